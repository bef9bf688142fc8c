"""What the imaplib scripts of the interop tests share."""
import sys


def check(cond, what):
    """Exit non-zero with what unless cond."""
    if not cond:
        sys.exit("failed: " + what)


def ok(resp, what):
    """The data of an imaplib reply that must be OK."""
    typ, data = resp
    check(typ == "OK", "%s: %s %r" % (what, typ, data))
    return data
