"""Python's imaplib on folders with non-ASCII names and "&", driven by
clients_test.go: first in modified UTF-7 (RFC 3501), then after ENABLE
UTF8=ACCEPT (RFC 6855) in UTF-8.

Usage: imaplib_folders.py HOST PORT USER PASSWORD
Prints OK at the end; any failed expectation exits non-zero with the
reason.
"""
import imaplib
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in testdata
from imaplib_common import check, mutf7, ok  # noqa: E402 (beside this script)

host, port, user, password = sys.argv[1:]


def q(name):
    return '"' + name + '"'


ARGER, SUB = "Ärger & Co", "Projekte.Übersicht"
check(mutf7(ARGER) == "&AMQ-rger &- Co", "mutf7: %s" % mutf7(ARGER))

M = imaplib.IMAP4(host, int(port))
ok(M.login(user, password), "LOGIN")
data = ok(M.list(), "LIST")
check(any(d.endswith(b'"&AMQ-rger &- Co"') for d in data), "LIST in modified UTF-7: %r" % data)
ok(M.create(q(mutf7(SUB))), "CREATE nested non-ASCII")

data = ok(M.select(q(mutf7(ARGER))), "SELECT")
check(data[0] == b"1", "EXISTS: %r" % data)
data = ok(M.fetch("1", "(FLAGS BODY.PEEK[])"), "FETCH")
check(b"Message 9, umlaut." in data[0][1] and b"$Label1" in data[0][0], "FETCH: %r" % data)
data = ok(M.search(None, "KEYWORD", "$Label1"), "SEARCH KEYWORD")
check(data[0] == b"1", "SEARCH KEYWORD: %r" % data)
data = ok(M.copy("1", q(mutf7(SUB))), "COPY")
check(b"COPYUID" in data[0], "COPY: %r" % data)

msg = b"From: py@local.example\r\nSubject: appended\r\n\r\nfrom imaplib\r\n"
data = ok(M.append(q(mutf7(ARGER)), "(\\Seen Project_X)", imaplib.Time2Internaldate(time.time()), msg), "APPEND")
check(b"APPENDUID" in data[0], "APPEND: %r" % data)
data = ok(M.noop(), "NOOP")
data = ok(M.search(None, "KEYWORD", "Project_X"), "SEARCH after APPEND")
check(data[0] == b"2", "SEARCH KEYWORD Project_X: %r" % data)
ok(M.store("1", "+FLAGS", "(\\Deleted)"), "STORE Deleted")
data = ok(M.expunge(), "EXPUNGE")
check(data[-1] == b"1", "EXPUNGE: %r" % data)

data = ok(M.select(q(mutf7(SUB))), "SELECT nested")
check(data[0] == b"1", "EXISTS in %s: %r" % (SUB, data))
data = ok(M.store("1", "+FLAGS", "(\\Flagged)"), "STORE")
check(b"\\Flagged" in data[0], "STORE reply: %r" % data)
ok(M.close(), "CLOSE")

# The same names in UTF-8.
ok(M.enable("UTF8=ACCEPT"), "ENABLE UTF8=ACCEPT")
data = ok(M.list('""', q("Projekte*")), "LIST in UTF-8")
check(any(d.endswith(q(SUB).encode()) for d in data), "LIST in UTF-8: %r" % data)
data = ok(M.select(q(ARGER)), "SELECT in UTF-8")
check(data[0] == b"1", "EXISTS in UTF-8: %r" % data)
data = ok(M.fetch("1", "(BODY.PEEK[])"), "FETCH in UTF-8")
check(data[0][1].endswith(b"from imaplib\r\n"), "FETCH in UTF-8: %r" % data)
data = ok(M.status(q(SUB), "(MESSAGES)"), "STATUS in UTF-8")
check(b"MESSAGES 1" in data[0], "STATUS in UTF-8: %r" % data)
M.logout()
print("OK", flush=True)
