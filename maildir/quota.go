package maildir

// Quota is a Maildir++ limit; zero fields mean no limit.
type Quota struct {
	Bytes    int64
	Messages int64
}

// QuotaUsage is a Maildir's usage as maildirsize records it.
type QuotaUsage struct {
	Bytes    int64
	Messages int64
	// Limit is the limit recorded in maildirsize's first line.
	Limit Quota
}
