package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailagent/mailagent/internal/connlimit"
	"golang.org/x/crypto/acme"
)

// Client self-configuration: from an address alone, Thunderbird
// (autoconfig), Outlook (Autodiscover, POX) and Apple Mail (a
// .mobileconfig profile) learn the server names, ports and TLS modes of
// the listeners this server really has. They are answered over HTTPS on
// listen.https with the mail certificate, for local domains only.

// maxAutodiscoverRequest bounds an Autodiscover request body: the POX
// request is a few hundred bytes.
const maxAutodiscoverRequest = 64 << 10

// clientService is one listener a client can use, as published.
type clientService struct {
	name     string // listener name: imaps, imap, pop3s, pop3, submissions, submission
	port     int
	implicit bool // TLS from the first byte; else STARTTLS
}

// clientSettings are what every client configuration names: the host
// (the certificate's name) and the listeners clients use, in order of
// preference (implicit TLS first, RFC 8314).
type clientSettings struct {
	host     string
	services []clientService
}

// clientSettings returns the listeners configured and bound, with the
// ports they really have.
func (s *server) clientSettings() clientSettings {
	bound := map[string]int{}
	for _, l := range s.listening {
		if _, p, err := net.SplitHostPort(l[1]); err == nil {
			bound[l[0]], _ = strconv.Atoi(p)
		}
	}
	cs := clientSettings{host: s.cfg.Hostname}
	for _, svc := range []clientService{
		{name: "imaps", implicit: true}, {name: "imap"},
		{name: "pop3s", implicit: true}, {name: "pop3"},
		{name: "submissions", implicit: true}, {name: "submission"},
	} {
		if p := bound[svc.name]; p > 0 {
			svc.port = p
			cs.services = append(cs.services, svc)
		}
	}
	return cs
}

// first returns the preferred service of a kind ("imap", "pop3",
// "submission"): its implicit-TLS listener when there is one.
func (cs clientSettings) first(kind string) (clientService, bool) {
	for _, svc := range cs.services {
		if svc.kind() == kind {
			return svc, true
		}
	}
	return clientService{}, false
}

// kind is the protocol of a service: imap, pop3 or submission.
func (svc clientService) kind() string {
	if svc.name == "submissions" {
		return "submission"
	}
	return strings.TrimSuffix(svc.name, "s")
}

// autoconfigHandler answers the three self-configuration protocols.
type autoconfigHandler struct {
	settings clientSettings
	// isLocal says whether a domain is served here; only local domains
	// get an answer.
	isLocal func(ctx context.Context, domain string) (bool, error)
	log     *slog.Logger
}

func (h *autoconfigHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.ToLower(r.URL.Path)
	switch path {
	case "/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml":
		h.thunderbird(w, r)
	case "/autodiscover/autodiscover.xml":
		h.autodiscover(w, r)
	case "/email.mobileconfig":
		h.mobileconfig(w, r)
	default:
		http.NotFound(w, r)
	}
}

// splitAddress returns the domain of an address, lower case, or "" when
// addr is not local@domain.
func splitAddress(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 || len(addr) > 320 || strings.ContainsFunc(addr, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return "", ""
	}
	return addr[:i], strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// localDomain checks domain and writes the refusal itself when it is not
// served here; it reports whether to go on.
func (h *autoconfigHandler) localDomain(w http.ResponseWriter, r *http.Request, domain string) bool {
	if domain == "" || strings.ContainsAny(domain, "/\\ ") {
		http.Error(w, "an email address is needed", http.StatusBadRequest)
		return false
	}
	ok, err := h.isLocal(r.Context(), domain)
	if err != nil {
		h.log.Error("autoconfig: directory lookup", "domain", domain, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return false
	}
	if !ok {
		http.NotFound(w, r)
		return false
	}
	return true
}

// thunderbird answers Thunderbird's autoconfig (clientConfig version
// 1.1), asked for as https://autoconfig.DOMAIN/mail/config-v1.1.xml or
// https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml, with the
// address in ?emailaddress= (newer versions) or only the host name.
func (h *autoconfigHandler) thunderbird(w http.ResponseWriter, r *http.Request) {
	_, domain := splitAddress(r.URL.Query().Get("emailaddress"))
	if domain == "" && r.URL.Query().Get("emailaddress") == "" {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		domain = strings.ToLower(strings.TrimPrefix(strings.ToLower(host), "autoconfig."))
	}
	if !h.localDomain(w, r, domain) {
		return
	}
	type server struct {
		Type           string `xml:"type,attr"`
		Hostname       string `xml:"hostname"`
		Port           int    `xml:"port"`
		SocketType     string `xml:"socketType"`
		Username       string `xml:"username"`
		Authentication string `xml:"authentication"`
	}
	type provider struct {
		ID          string   `xml:"id,attr"`
		Domain      string   `xml:"domain"`
		DisplayName string   `xml:"displayName"`
		Short       string   `xml:"displayShortName"`
		Incoming    []server `xml:"incomingServer"`
		Outgoing    []server `xml:"outgoingServer"`
	}
	type clientConfig struct {
		XMLName  xml.Name `xml:"clientConfig"`
		Version  string   `xml:"version,attr"`
		Provider provider `xml:"emailProvider"`
	}
	cc := clientConfig{Version: "1.1", Provider: provider{ID: domain, Domain: domain, DisplayName: domain, Short: domain}}
	for _, svc := range h.settings.services {
		sv := server{Type: svc.kind(), Hostname: h.settings.host, Port: svc.port, SocketType: "STARTTLS",
			Username: "%EMAILADDRESS%", Authentication: "password-cleartext"}
		if svc.implicit {
			sv.SocketType = "SSL"
		}
		if svc.kind() == "submission" {
			sv.Type = "smtp"
			cc.Provider.Outgoing = append(cc.Provider.Outgoing, sv)
		} else {
			cc.Provider.Incoming = append(cc.Provider.Incoming, sv)
		}
	}
	writeXML(w, "application/xml", cc)
}

// autodiscoverRequest is the POX request Outlook posts.
type autodiscoverRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

// parseAutodiscoverRequest reads the address of a POX Autodiscover
// request.
func parseAutodiscoverRequest(body []byte) (string, error) {
	var req autodiscoverRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		return "", err
	}
	addr := strings.TrimSpace(req.Request.EMailAddress)
	if _, d := splitAddress(addr); d == "" {
		return "", errors.New("no email address in the request")
	}
	return addr, nil
}

// autodiscover answers Microsoft's POX Autodiscover (the Outlook
// response schema 2006a), POSTed to /autodiscover/autodiscover.xml.
func (h *autoconfigHandler) autodiscover(w http.ResponseWriter, r *http.Request) {
	var addr string
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAutodiscoverRequest))
		if err == nil {
			addr, err = parseAutodiscoverRequest(body)
		}
		if err != nil {
			http.Error(w, "not an Autodiscover request", http.StatusBadRequest)
			return
		}
	} else {
		// Some clients GET with the address as a parameter.
		addr = r.URL.Query().Get("email")
	}
	_, domain := splitAddress(addr)
	if !h.localDomain(w, r, domain) {
		return
	}
	type protocol struct {
		Type         string `xml:"Type"`
		Server       string `xml:"Server"`
		Port         int    `xml:"Port"`
		LoginName    string `xml:"LoginName"`
		SPA          string `xml:"SPA"`
		SSL          string `xml:"SSL"`
		Encryption   string `xml:"Encryption"`
		AuthRequired string `xml:"AuthRequired"`
	}
	type response struct {
		XMLNS   string `xml:"xmlns,attr"`
		Account struct {
			AccountType string     `xml:"AccountType"`
			Action      string     `xml:"Action"`
			Protocols   []protocol `xml:"Protocol"`
		} `xml:"Account"`
	}
	type autodiscover struct {
		XMLName  xml.Name `xml:"Autodiscover"`
		XMLNS    string   `xml:"xmlns,attr"`
		Response response `xml:"Response"`
	}
	ad := autodiscover{XMLNS: "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"}
	ad.Response.XMLNS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	ad.Response.Account.AccountType, ad.Response.Account.Action = "email", "settings"
	// Outlook takes one server per protocol type: the preferred one.
	for _, kind := range []string{"imap", "pop3", "submission"} {
		svc, ok := h.settings.first(kind)
		if !ok {
			continue
		}
		p := protocol{Type: strings.ToUpper(kind), Server: h.settings.host, Port: svc.port, LoginName: addr,
			SPA: "off", SSL: "on", Encryption: "TLS", AuthRequired: "on"}
		if kind == "submission" {
			p.Type = "SMTP"
		}
		if svc.implicit {
			p.Encryption = "SSL"
		}
		ad.Response.Account.Protocols = append(ad.Response.Account.Protocols, p)
	}
	writeXML(w, "application/xml", ad)
}

// mobileconfig answers an Apple configuration profile (unsigned) with
// one mail account for ?emailaddress=, IMAP (or POP3 when there is no
// IMAP listener) and submission.
func (h *autoconfigHandler) mobileconfig(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("emailaddress")
	_, domain := splitAddress(addr)
	if !h.localDomain(w, r, domain) {
		return
	}
	in, ok := h.settings.first("imap")
	accountType := "EmailTypeIMAP"
	if !ok {
		in, ok = h.settings.first("pop3")
		accountType = "EmailTypePOP"
	}
	out, okOut := h.settings.first("submission")
	if !ok || !okOut {
		http.Error(w, "no IMAP or POP3 and submission listener to configure", http.StatusNotFound)
		return
	}
	// The same address gets the same identifiers each time, so that
	// installing the profile again replaces the account.
	id := "mailagent." + h.settings.host + "." + addr
	account := plistDict{
		{"PayloadType", "com.apple.mail.managed"},
		{"PayloadVersion", 1},
		{"PayloadIdentifier", id + ".account"},
		{"PayloadUUID", nameUUID(id + ".account")},
		{"PayloadDisplayName", addr},
		{"EmailAccountDescription", addr},
		{"EmailAccountType", accountType},
		{"EmailAddress", addr},
		{"IncomingMailServerHostName", h.settings.host},
		{"IncomingMailServerPortNumber", in.port},
		{"IncomingMailServerUseSSL", true},
		{"IncomingMailServerUsername", addr},
		{"IncomingMailServerAuthentication", "EmailAuthPassword"},
		{"OutgoingMailServerHostName", h.settings.host},
		{"OutgoingMailServerPortNumber", out.port},
		{"OutgoingMailServerUseSSL", true},
		{"OutgoingMailServerUsername", addr},
		{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
		{"OutgoingPasswordSameAsIncomingPassword", true},
	}
	profile := plistDict{
		{"PayloadType", "Configuration"},
		{"PayloadVersion", 1},
		{"PayloadIdentifier", id},
		{"PayloadUUID", nameUUID(id)},
		{"PayloadDisplayName", "Mail for " + addr},
		{"PayloadContent", []any{account}},
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">`)
	writePlist(&b, profile)
	b.WriteString("</plist>\n")
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="email.mobileconfig"`)
	w.Write(b.Bytes())
}

// plistDict is a property list dictionary, in the order written.
type plistDict []struct {
	k string
	v any
}

// writePlist writes v (string, int, bool, []any or plistDict) as
// property-list XML.
func writePlist(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(v))
		b.WriteString("</string>")
	case int:
		fmt.Fprintf(b, "<integer>%d</integer>", v)
	case bool:
		if v {
			b.WriteString("<true/>")
		} else {
			b.WriteString("<false/>")
		}
	case []any:
		b.WriteString("<array>")
		for _, e := range v {
			writePlist(b, e)
		}
		b.WriteString("</array>")
	case plistDict:
		b.WriteString("<dict>")
		for _, kv := range v {
			b.WriteString("<key>")
			xml.EscapeText(b, []byte(kv.k))
			b.WriteString("</key>")
			writePlist(b, kv.v)
		}
		b.WriteString("</dict>")
	default:
		panic(fmt.Sprintf("plist: type %T", v))
	}
}

// nameUUID is a UUID (version 8, name-based with SHA-256) of name.
func nameUUID(name string) string {
	h := sha256.Sum256([]byte(name))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// httpsTLS is the HTTPS listener's TLS configuration: the mail
// certificate and policy, with HTTP's ALPN protocols.
func (s *server) httpsTLS() *tls.Config {
	tc := s.tlsCfg.Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	if s.acme != nil {
		// TLS-ALPN-01: the CA's validation connects here asking for it.
		tc.NextProtos = append(tc.NextProtos, acme.ALPNProto)
	}
	return tc
}

// newHTTPServer is an HTTP server with the time and size limits of
// every fullserver HTTP listener.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func writeXML(w http.ResponseWriter, contentType string, v any) {
	out, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.Write([]byte(xml.Header))
	w.Write(out)
}

// setupHTTPS serves client self-configuration on listen.https with the
// mail certificate (and, with ACME, answers TLS-ALPN-01 challenges on
// the same port through the TLS configuration's GetCertificate).
func (s *server) setupHTTPS() error {
	if s.cfg.Listen.HTTPS == "" {
		return s.setupHTTP()
	}
	ln, err := s.listen("https", s.cfg.Listen.HTTPS)
	if err != nil {
		return err
	}
	// Counted against limits.max_connections with every other listener.
	ln = connlimit.Listener(ln, s.conns)
	h := &autoconfigHandler{settings: s.clientSettings(), isLocal: s.dir.IsLocalDomain, log: s.log}
	hs := newHTTPServer(h, s.log)
	hs.TLSConfig = s.httpsTLS()
	s.serve("https", func() error { return hs.ServeTLS(ln, "", "") }, hs.Shutdown, http.ErrServerClosed)
	return s.setupHTTP()
}
