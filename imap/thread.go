package imap

import (
	"cmp"
	"slices"
	"time"

	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// threadNode is one node of a THREAD answer: a message (num != 0) or a
// message only referred to (num 0), with its replies.
type threadNode struct {
	num      uint32
	date     threadDate
	children []*threadNode
	parent   *threadNode
	// subject is the base subject, and reply whether the subject was a
	// reply's or forward's (RFC 5256 section 2.1), for REFERENCES'
	// grouping by subject.
	subject string
	reply   bool
}

// threadDate is a message's date as THREAD compares it: a time.Time
// without the location, so that nodes hold no pointer to it.
type threadDate struct {
	sec  int64
	nsec int32
}

func dateOf(t time.Time) threadDate { return threadDate{t.Unix(), int32(t.Nanosecond())} }

func (d threadDate) compare(o threadDate) int {
	if c := cmp.Compare(d.sec, o.sec); c != 0 {
		return c
	}
	return cmp.Compare(d.nsec, o.nsec)
}

// cmdThread serves THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT,
// REFERENCES and REFS.
func (c *conn) cmdThread(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Thread)
	found, err := s.matchingIn(a.Charset, a.Criteria)
	if err != nil {
		return okStatus{}, err
	}
	s.loadSortFields(found)
	var roots []*threadNode
	if a.Algorithm == "ORDEREDSUBJECT" {
		roots = orderedSubject(found, cmd.UID)
	} else {
		roots = references(found, cmd.UID, a.Algorithm == "REFS")
	}
	w := c.w
	w.Untagged()
	w.Atom("THREAD")
	if len(roots) > 0 {
		w.SP()
	}
	for _, r := range roots {
		w.Atom("(")
		writeThreadMembers(w, r)
		w.Atom(")")
	}
	w.End()
	return okStatus{}, nil
}

// writeThreadMembers writes a node and its replies: one reply follows
// in the same list, several are each a parenthesized list.
func writeThreadMembers(w *imapwire.Writer, n *threadNode) {
	if n.num != 0 {
		w.Number(n.num)
	}
	switch {
	case len(n.children) == 1 && n.num != 0:
		w.SP()
		writeThreadMembers(w, n.children[0])
	case len(n.children) > 0:
		if n.num != 0 {
			w.SP()
		}
		for _, c := range n.children {
			w.Atom("(")
			writeThreadMembers(w, c)
			w.Atom(")")
		}
	}
}

// threadNum is the number a THREAD answer gives a message.
func threadNum(mc *matchContext, uid bool) uint32 {
	if uid {
		return mc.m.UID
	}
	return mc.seq
}

// orderedSubject groups messages by base subject (RFC 5256 section 3,
// ORDEREDSUBJECT): in each group the first message by date is the
// parent of the others; groups in the order of their first messages.
func orderedSubject(found []*matchContext, uid bool) []*threadNode {
	groups := map[string]*threadNode{}
	var roots []*threadNode
	nodes := make([]*threadNode, len(found))
	subjects := make([]string, len(found))
	for i, mc := range found {
		nodes[i] = &threadNode{num: threadNum(mc, uid), date: dateOf(sentDateOf(mc))}
		if f := mc.sortFieldsOf(); f != nil {
			subjects[i] = f.subject
		}
	}
	order := sortedByDate(nodes)
	for _, i := range order {
		n := nodes[i]
		if root := groups[subjects[i]]; root != nil {
			root.children = append(root.children, n)
			continue
		}
		groups[subjects[i]] = n
		roots = append(roots, n)
	}
	return roots
}

// sortedByDate returns the indices of nodes by date, then number.
func sortedByDate(nodes []*threadNode) []int {
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareNodes(nodes[a], nodes[b]) })
	return order
}

func compareNodes(a, b *threadNode) int {
	if c := a.date.compare(b.date); c != 0 {
		return c
	}
	return cmp.Compare(a.num, b.num)
}

// references threads messages by Message-ID, References and
// In-Reply-To (RFC 5256 section 3, REFERENCES): parents from the
// references, loops refused, a message's own last reference overriding
// a parent guessed from another's (step 1); referred-to messages
// missing here kept as empty nodes only where they join replies (step
// 4); threads of one base subject gathered (step 5); siblings and
// threads by date (step 6). REFS (as Dovecot offers it) orders threads
// by their latest message instead.
func references(found []*matchContext, uid, refs bool) []*threadNode {
	// Nodes are allocated in blocks and listed in the order they are
	// made, which is the order the roots are taken in.
	all := make([]*threadNode, 0, len(found)+len(found)/4)
	var block []threadNode
	newNode := func() *threadNode {
		if len(block) == cap(block) {
			block = make([]threadNode, 0, max(len(found)+len(found)/4-len(all), 64))
		}
		block = append(block, threadNode{})
		n := &block[len(block)-1]
		all = append(all, n)
		return n
	}
	byID := make(map[string]*threadNode, len(found)+len(found)/4)
	node := func(id string) *threadNode {
		n := byID[id]
		if n == nil {
			n = newNode()
			byID[id] = n
		}
		return n
	}
	ancestor := func(a, b *threadNode) bool { // a is b or above it
		for x := b; x != nil; x = x.parent {
			if x == a {
				return true
			}
		}
		return false
	}
	link := func(parent, child *threadNode) {
		if child.parent != nil || ancestor(child, parent) {
			return
		}
		child.parent = parent
		parent.children = append(parent.children, child)
	}
	for _, mc := range found {
		var id string
		var chain []string
		f := mc.sortFieldsOf()
		if f != nil {
			id, chain = f.messageID, f.parents
		}
		var n *threadNode
		if id == "" || byID[id] != nil && byID[id].num != 0 {
			// No Message-ID, or a duplicate: a node of its own.
			n = newNode()
		} else {
			n = node(id)
		}
		n.num, n.date = threadNum(mc, uid), dateOf(sentDateOf(mc))
		if f != nil {
			n.subject, n.reply = f.subject, f.reply
		}
		var prev *threadNode
		for _, ref := range chain {
			r := node(ref)
			if prev != nil {
				link(prev, r)
			}
			prev = r
		}
		if n.parent != nil {
			// A parent guessed from another message's references gives
			// way to the message's own, even when those would make a
			// loop and so link nothing (step 1C).
			p := n.parent
			p.children = slices.DeleteFunc(p.children, func(c *threadNode) bool { return c == n })
			n.parent = nil
		}
		if prev != nil && prev != n {
			link(prev, n)
		}
	}
	var roots []*threadNode
	for _, n := range all {
		if n.parent == nil {
			roots = append(roots, n)
		}
	}
	roots = prune(roots)
	for _, r := range roots {
		sortChildren(r)
	}
	roots = gatherBySubject(roots)
	for _, r := range roots {
		sortChildren(r)
	}
	key := firstDate
	if refs {
		key = lastDate
	}
	slices.SortStableFunc(roots, func(a, b *threadNode) int {
		if c := key(a).compare(key(b)); c != 0 {
			return c
		}
		return cmp.Compare(firstNum(a), firstNum(b))
	})
	return roots
}

// gatherBySubject is REFERENCES' step 5 (RFC 5256 section 3): threads
// whose tops have one base subject are joined, under the original
// message where one is not a reply or forward, else under an empty
// node.
func gatherBySubject(roots []*threadNode) []*threadNode {
	subject := func(n *threadNode) string {
		if n.num == 0 && len(n.children) > 0 {
			return n.children[0].subject
		}
		return n.subject
	}
	table := make(map[string]*threadNode, len(roots))
	for _, n := range roots {
		subj := subject(n)
		if subj == "" {
			continue
		}
		t := table[subj]
		if t == nil || t.num != 0 && (n.num == 0 || t.reply && !n.reply) {
			table[subj] = n
		}
	}
	out := make([]*threadNode, 0, len(roots))
	for _, n := range roots {
		subj := subject(n)
		t := table[subj]
		if subj == "" || t == n {
			out = append(out, n)
			continue
		}
		adopt := func(parent, child *threadNode) {
			child.parent = parent
			parent.children = append(parent.children, child)
		}
		switch {
		case t.num == 0 && n.num == 0:
			for _, c := range n.children {
				adopt(t, c)
			}
		case t.num == 0, n.reply && !t.reply:
			adopt(t, n)
		default:
			// Neither is the original: both under a new empty node,
			// which takes the table's place (and t's among the roots).
			d := &threadNode{subject: subj}
			*d, *t = *t, threadNode{children: []*threadNode{d, n}, subject: subj}
			for _, c := range d.children {
				c.parent = d
			}
			d.parent, n.parent = t, t
		}
	}
	return out
}

// prune drops empty nodes: one without replies goes, one with replies
// is replaced by them, except at the top where it stays to join several
// (RFC 5256 step 4).
func prune(nodes []*threadNode) []*threadNode {
	out := make([]*threadNode, 0, len(nodes))
	for _, n := range nodes {
		n.children = pruneKids(n.children, n)
		if n.num == 0 {
			switch len(n.children) {
			case 0:
				continue
			case 1:
				c := n.children[0]
				c.parent = nil
				out = append(out, c)
				continue
			}
		}
		out = append(out, n)
	}
	return out
}

func pruneKids(nodes []*threadNode, parent *threadNode) []*threadNode {
	empty := false
	for _, n := range nodes {
		n.children = pruneKids(n.children, n)
		empty = empty || n.num == 0
	}
	if !empty {
		return nodes
	}
	var out []*threadNode
	for _, n := range nodes {
		if n.num == 0 {
			for _, c := range n.children {
				c.parent = parent
			}
			out = append(out, n.children...)
			continue
		}
		out = append(out, n)
	}
	return out
}

func sortChildren(n *threadNode) {
	for _, c := range n.children {
		sortChildren(c)
	}
	slices.SortStableFunc(n.children, func(a, b *threadNode) int {
		if c := firstDate(a).compare(firstDate(b)); c != 0 {
			return c
		}
		return cmp.Compare(firstNum(a), firstNum(b))
	})
}

// firstDate is a node's date, or for an empty one its first reply's.
func firstDate(n *threadNode) threadDate {
	if n.num != 0 || len(n.children) == 0 {
		return n.date
	}
	return firstDate(n.children[0])
}

func firstNum(n *threadNode) uint32 {
	if n.num != 0 || len(n.children) == 0 {
		return n.num
	}
	return firstNum(n.children[0])
}

// lastDate is the date of a thread's latest message.
func lastDate(n *threadNode) threadDate {
	d := n.date
	for _, c := range n.children {
		if cd := lastDate(c); cd.compare(d) > 0 {
			d = cd
		}
	}
	return d
}
