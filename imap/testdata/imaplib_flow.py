"""A full IMAP session with Python's imaplib, driven by interop_test.go.

Usage: imaplib_flow.py HOST PORT USER PASSWORD CAFILE
Prints IDLING when it waits in IDLE for a delivery, and OK at the end;
any failed expectation exits non-zero with the reason.
"""
import imaplib
import ssl
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in testdata
from imaplib_common import check, ok  # noqa: E402 (beside this script)

host, port, user, password, cafile = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


M = imaplib.IMAP4(host, int(port))
check("LOGINDISABLED" in M.capabilities, "LOGINDISABLED before TLS: %r" % (M.capabilities,))
ok(M.starttls(ssl_context=ctx), "STARTTLS")
ok(M.login(user, password), "LOGIN")

data = ok(M.list(), "LIST")
check(any(b"\\Sent" in d and b"Sent" in d for d in data), "LIST special use: %r" % data)
ok(M.create("Archive.2026"), "CREATE")

data = ok(M.select("INBOX"), "SELECT")
check(data[0] == b"3", "EXISTS: %r" % data)

data = ok(M.search(None, "FROM", "alice"), "SEARCH")
check(data[0].split() == [b"1", b"3"], "SEARCH FROM alice: %r" % data)
data = ok(M.uid("SEARCH", "CHARSET", "UTF-8", "UNSEEN"), "UID SEARCH")
check(data[0].split() == [b"2", b"3"], "UID SEARCH UNSEEN: %r" % data)

data = ok(M.fetch("2", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH header")
check(b"Subject: =?UTF-8?B?" in data[0][1], "FETCH subject: %r" % data)
data = ok(M.fetch("1", "(RFC822)"), "FETCH RFC822")
check(data[0][1].startswith(b"From: Alice") and data[0][1].endswith(b"body.\r\n"), "RFC822: %r" % data)
data = ok(M.fetch("1:*", "(UID RFC822.SIZE)"), "FETCH sizes")
check(len(data) == 3, "FETCH 1:*: %r" % data)

data = ok(M.store("1", "+FLAGS", "(\\Flagged)"), "STORE")
check(b"\\Flagged" in data[0], "STORE reply: %r" % data)
typ, data = M.copy("1", "Archive.2026")
check(typ == "OK", "COPY: %r" % data)
ok(M.uid("MOVE", "2", "Trash"), "UID MOVE")
ok(M.store("1", "+FLAGS", "(\\Deleted)"), "STORE Deleted")
data = ok(M.expunge(), "EXPUNGE")
check(data[-1] == b"1", "EXPUNGE reply: %r" % data)

msg = b"From: py@local.example\r\nSubject: appended\r\n\r\nfrom imaplib\r\n"
typ, data = M.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(time.time()), msg)
check(typ == "OK" and b"APPENDUID" in data[0], "APPEND: %r" % data)
data = ok(M.status("Archive.2026", "(MESSAGES)"), "STATUS")
check(b"MESSAGES 1" in data[0], "STATUS: %r" % data)

# IDLE by hand: imaplib 3.11 has no idle().
tag = M._new_tag()
M.send(tag + b" IDLE\r\n")
line = M.readline()
check(line.startswith(b"+"), "IDLE continuation: %r" % line)
print("IDLING", flush=True)
while True:
    line = M.readline()
    check(line != b"", "connection closed in IDLE")
    if line.endswith(b"EXISTS\r\n"):
        break
M.send(b"DONE\r\n")
while True:
    line = M.readline()
    if line.startswith(tag):
        check(b" OK " in line, "IDLE end: %r" % line)
        break
ok(M.close(), "CLOSE")
M.logout()
print("OK", flush=True)
