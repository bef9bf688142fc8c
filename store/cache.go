package store

import (
	"sync"
	"time"
)

// cache holds recent lookup results, found and not found, for a short
// time. A write through the same *SQL clears it; a generation number
// keeps a lookup that raced with that write from storing its stale
// result afterwards.
type cache struct {
	mu      sync.Mutex
	gen     uint64
	ttl     time.Duration
	max     int
	now     func() time.Time
	entries map[string]cacheEntry
}

type cacheEntry struct {
	val     any // *User, bool, []string or string; nil for not found
	expires time.Time
}

func newCache(max int, ttl time.Duration, now func() time.Time) *cache {
	return &cache{ttl: ttl, max: max, now: now, entries: make(map[string]cacheEntry)}
}

// get returns the cached value and whether there was one, and the
// generation to pass to put after a lookup.
func (c *cache) get(key string) (val any, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && c.now().After(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	return e.val, ok, c.gen
}

// put stores val unless the cache was cleared since gen was read.
func (c *cache) put(key string, val any, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		// Evict an arbitrary tenth; map order is random enough to
		// keep this fair without bookkeeping on every hit.
		n := c.max/10 + 1
		for k := range c.entries {
			delete(c.entries, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.entries[key] = cacheEntry{val: val, expires: c.now().Add(c.ttl)}
}

// clear drops every entry; called after each write.
func (c *cache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
