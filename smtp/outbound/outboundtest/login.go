package outboundtest

import "github.com/emersion/go-sasl"

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// only implements as a client: it asks for the user name, then the
// password.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

var _ sasl.Server = (*loginServer)(nil)

func newLoginServer(check func(user, pass string) error) *loginServer {
	return &loginServer{check: check}
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp != nil {
			// The user name came with the AUTH command.
			l.user = string(resp)
			l.step = 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step = 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}
