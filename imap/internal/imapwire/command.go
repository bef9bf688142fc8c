package imapwire

import (
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Command is one parsed command. Args holds the arguments of commands
// that take any, as a pointer to the struct named after the command
// (*Login for LOGIN, *Fetch for FETCH and UID FETCH, ...).
type Command struct {
	Tag  string
	Name string // upper case, without "UID"
	UID  bool   // the command came as UID FETCH, UID SEARCH, ...
	Args any
}

// Login is LOGIN's arguments.
type Login struct{ Username, Password string }

// Authenticate is AUTHENTICATE's arguments; InitialResponse is set with
// SASL-IR (RFC 4959), empty for "=".
type Authenticate struct {
	Mechanism       string
	InitialResponse []byte
	HasInitial      bool
}

// Enable is ENABLE's capability names, upper-cased.
type Enable struct{ Caps []string }

// ID is ID's parameters (RFC 2971); nil for NIL.
type ID struct{ Params [][2]string }

// Compress is COMPRESS's algorithm, upper-cased (RFC 4978).
type Compress struct{ Algorithm string }

// Select is SELECT's and EXAMINE's arguments.
type Select struct {
	Mailbox   string
	ReadOnly  bool // EXAMINE
	CondStore bool // (CONDSTORE), RFC 7162
	QResync   *QResync
}

// QResync is SELECT's QRESYNC parameter (RFC 7162 section 3.2.5).
type QResync struct {
	UIDValidity uint32
	ModSeq      uint64
	KnownUIDs   imap.UIDSet // nil when absent
	SeqMatch    *SeqMatch
}

// SeqMatch is QRESYNC's known sequence numbers and their UIDs.
type SeqMatch struct {
	Seqs imap.SeqSet
	UIDs imap.UIDSet
}

// Mailbox is the argument of commands that take only a mailbox name:
// DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT.
type Mailbox struct{ Name string }

// Create is CREATE's arguments, with CREATE-SPECIAL-USE (RFC 6154).
type Create struct {
	Mailbox    string
	SpecialUse []imap.MailboxAttr
}

// Rename is RENAME's arguments.
type Rename struct{ From, To string }

// List is LIST's (and LSUB's) arguments, with LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154) options.
type List struct {
	Lsub     bool
	Ref      string
	Patterns []string
	Options  imap.ListOptions
	Extended bool // selection or return options, or several patterns, were given
	// StatusMailboxID: RETURN (STATUS (... MAILBOXID)).
	StatusMailboxID bool
}

// Status is STATUS's arguments.
type Status struct {
	Mailbox   string
	Items     imap.StatusOptions
	MailboxID bool // OBJECTID's MAILBOXID item (RFC 8474)
}

// Append is APPEND's mailbox and first message; Reader.NextMessage
// returns the others (MULTIAPPEND, RFC 3502). REPLACE (RFC 8508) comes
// as Append with Replace set.
type Append struct {
	Mailbox string
	Replace imap.NumSet // REPLACE's message to replace
	Message *AppendMessage
}

// AppendMessage is one message of APPEND. Body reads its literal; for
// CATENATE (RFC 4469) Body is nil and Reader.NextPart returns the parts.
type AppendMessage struct {
	Flags    []imap.Flag
	Date     time.Time
	Binary   bool // literal8, "~{n}" (RFC 3516)
	Size     int64
	Body     io.Reader
	Catenate bool
}

// CatenatePart is one part of CATENATE: a URL, or TEXT with a body.
type CatenatePart struct {
	URL    string
	Binary bool
	Size   int64
	Body   io.Reader
}

// Fetch is FETCH's arguments. Options uses go-imap's types; the items
// they have no field for are the booleans here.
type Fetch struct {
	Set     imap.NumSet
	Options imap.FetchOptions
	// RFC822, RFC822.HEADER and RFC822.TEXT are answered under their
	// own names (IMAP4rev1).
	RFC822, RFC822Header, RFC822Text bool
	SaveDate                         bool // RFC 8514
	EmailID, ThreadID                bool // RFC 8474
	Preview, PreviewLazy             bool // RFC 8970
	// PreviewFuzzy: Dovecot's older form, PREVIEW (FUZZY), answered
	// as PREVIEW (FUZZY "..."); Snippet: SNIPPET, answered likewise.
	PreviewFuzzy, Snippet bool
	Vanished              bool // CHANGEDSINCE's VANISHED (RFC 7162)
	UIDItem               bool // UID was asked for as an item
	HasChangedSince       bool
}

// Store is STORE's arguments.
type Store struct {
	Set               imap.NumSet
	Flags             imap.StoreFlags
	UnchangedSince    uint64 // RFC 7162
	HasUnchangedSince bool
}

// Copy is COPY's and MOVE's arguments.
type Copy struct {
	Set     imap.NumSet
	Mailbox string
}

// Expunge is UID EXPUNGE's set (RFC 4315).
type Expunge struct{ Set imap.UIDSet }

// Search is SEARCH's arguments. Strings in Criteria are as sent: in
// Charset, which the server converts.
type Search struct {
	Return   imap.SearchOptions
	Context  ContextReturn // RFC 5267's UPDATE, CONTEXT and PARTIAL
	ESearch  bool          // RETURN was given: the answer is ESEARCH
	Charset  string
	Criteria *SearchCriteria
}

// SortKey is one SORT criterion (RFC 5256, RFC 5957's DISPLAYFROM and
// DISPLAYTO).
type SortKey struct {
	Key     string // ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO, DISPLAYFROM, DISPLAYTO
	Reverse bool
}

// Sort is SORT's arguments; Return and ESearch as Search's (ESORT,
// RFC 5267).
type Sort struct {
	Return   imap.SearchOptions
	Context  ContextReturn
	ESearch  bool
	Keys     []SortKey
	Charset  string
	Criteria *SearchCriteria
}

// Thread is THREAD's arguments (RFC 5256, RFC 9200's REFS).
type Thread struct {
	Algorithm string
	Charset   string
	Criteria  *SearchCriteria
}

// QuotaRoot is GETQUOTA's argument.
type QuotaRoot struct{ Root string }

// SetQuota is SETQUOTA's arguments (RFC 9208).
type SetQuota struct {
	Root   string
	Limits []QuotaLimit
}

// QuotaLimit is one resource limit of SETQUOTA.
type QuotaLimit struct {
	Resource string
	Limit    uint64
}

// CancelUpdate is CANCELUPDATE's tags (RFC 5267).
type CancelUpdate struct{ Tags []string }
