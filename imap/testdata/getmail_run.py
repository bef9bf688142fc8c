"""Runs getmail, its path the first argument, the rest its arguments,
with one race of getmail6 6.18 taken out, driven by fetchers_test.go.

getmail delivers each message in a child process and installs its
SIGCHLD handler only after fork(): a child that exits before that is
never seen, and getmail waits out its timeout (three minutes) to fail
with "waiting child pid N timed out". Here the parent waits for the
child with waitpid() instead; getmail's IMAP side is untouched.
"""
import os
import runpy
import sys

sys.dont_write_bytecode = True  # no __pycache__ in testdata
from getmailcore import baseclasses  # noqa: E402
from getmailcore.exceptions import getmailOperationError  # noqa: E402


def forkchild(self, childfun, with_out=True):
    self.child = child = baseclasses.Namespace()
    child.stdout = baseclasses.TemporaryFile23()
    child.stderr = baseclasses.TemporaryFile23()
    child.childpid = os.fork()
    if child.childpid == 0:
        childfun(child.stdout, child.stderr)
        os._exit(127)  # childfun execs or exits
    _, status = os.waitpid(child.childpid, 0)
    if not os.WIFEXITED(status):
        raise getmailOperationError("child pid %d failed to exit" % child.childpid)
    child.exitcode = os.WEXITSTATUS(status)
    child.stderr.seek(0)
    child.err = child.stderr.read().strip().decode()
    child.stdout.seek(0)
    if with_out:
        child.out = child.stdout.read().strip()
    return child


baseclasses.ForkingBase.forkchild = forkchild
prog = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(prog, run_name="__main__")
