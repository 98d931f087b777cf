# 58-settings-survive-kills: the admins' settings (URL reservations, grants, the listen list, exclusions) survive SIGKILL at any instant: 200 times, a daemon on one state directory takes a random series of portsharectl changes and is killed 0-30 ms after the last one is launched (half the time aimed at its write); the next daemon on that directory shows exactly the state before or after the change in flight, never a mix nor a refusal to start; the seccomp filter is loaded (plain build); no settings.tmp survives a start.
import json
import os
import random
import signal
import subprocess
import time

from harness import SANITIZER_MARKS, Story, check, check_eq, fail, indent, say, tail

KILLS = 200          # daemons killed, one per round
LOOP_BUDGET = 90.0   # seconds the rounds may take in all
MAX_DELAY = 0.030    # the kill comes 0..MAX_DELAY s after the last change is launched:
AIMED = 0.5          # this often at about the time a change takes (to land in its write)
CONFIG_LISTEN = ["127.0.0.1"]
PREFIX_PORT = 18158  # reservations bind nothing: no app registers under them
ROOT = {"uid": 0, "name": "root"}
SHOWS = ("urlacl", "iplisten", "exclude", "grant")


class Model:
    """What the settings should be, as the daemon keeps them: lists in its order (a
    delete moves the last entry into the hole), the listen list None until an admin
    changes it (the config file's list until then)."""

    def __init__(self):
        self.reservations = []  # prefixes, each reserved for user root
        self.grants = []        # queue names, owner root, granted to user root
        self.listen = None      # None: the config's list; else the managed list
        self.exclusions = []    # "127.0.0.1:PORT"

    def copy(self):
        m = Model()
        m.reservations = list(self.reservations)
        m.grants = list(self.grants)
        m.listen = None if self.listen is None else list(self.listen)
        m.exclusions = list(self.exclusions)
        return m

    def listen_list(self):
        return list(CONFIG_LISTEN) if self.listen is None else self.listen

    def shows(self):
        """What each `portsharectl WHAT show --json` prints, parsed."""
        addrs = self.listen_list()
        return {
            "urlacl": {"reservations": [{"prefix": p, "users": [ROOT], "groups": []} for p in self.reservations]},
            "iplisten": {"source": "config" if self.listen is None else "state",
                         "addresses": addrs if addrs else ["0.0.0.0", "::"]},
            "exclude": {"exclusions": list(self.exclusions)},
            "grant": {"grants": [{"queue": q, "owner": {"uid": 0, "name": "root"}, "by": "admin",
                                  "users": [ROOT], "groups": []} for q in self.grants]},
        }

    def apply(self, change):
        """(whether the daemon takes the change, the model after it)."""
        kind, verb, item = change
        m = self.copy()
        if kind == "iplisten":
            lst = m.listen_list()
            copied = m.listen is None and len(CONFIG_LISTEN) > 0
            if verb == "add":
                if item in lst:
                    if not copied:
                        return False, self
                else:
                    lst.append(item)
            elif item not in lst:
                return False, self
            else:
                remove(lst, item)
            m.listen = lst
            return True, m
        lst = {"urlacl": m.reservations, "grant": m.grants, "exclude": m.exclusions}[kind]
        if verb == "add":
            if item in lst:
                # a grant to root again changes nothing and is no error
                return kind == "grant", self
            lst.append(item)
        elif item not in lst:
            return False, self
        else:
            remove(lst, item)
        return True, m


def remove(lst, item):
    """The daemon's delete: the last entry takes the place of the one removed."""
    at = lst.index(item)
    lst[at] = lst[-1]
    lst.pop()


def argv(change):
    kind, verb, item = change
    words = [kind, verb, item]
    if kind == "urlacl" and verb == "add":
        words += ["--user", "root"]
    if kind == "grant":
        words += ["--user", "root", "--owner", "root"]
    return words


def random_change(rng, m, valid=True):
    """A change of a random kind, to an item of a small pool: an add if the item is not
    there, a delete if it is (with valid False, now and then the other one: a change the
    daemon refuses)."""
    kind = rng.choice(SHOWS)
    if kind == "urlacl":
        item = "http://+:%d/p%d/" % (PREFIX_PORT, rng.randrange(12))
        present = item in m.reservations
    elif kind == "grant":
        item = "q%d" % rng.randrange(8)
        present = item in m.grants
    elif kind == "iplisten":
        item = "127.0.0.%d" % rng.randrange(1, 7)
        present = item in m.listen_list()
    else:
        item = "127.0.0.1:%d" % (20000 + rng.randrange(12))
        present = item in m.exclusions
    verb = "delete" if present else "add"
    if not valid and rng.random() < 0.1:
        verb = "add" if present else "delete"
    return (kind, verb, item)


def kill_delay(rng, took):
    """0..MAX_DELAY s: uniform, or (AIMED of the time) 0.2 to 1 times the median time
    the last answered changes took, so that many kills land inside the daemon's write."""
    if not took or rng.random() >= AIMED:
        return rng.uniform(0, MAX_DELAY)
    median = sorted(took[-21:])[len(took[-21:]) // 2]
    return min(MAX_DELAY, median * rng.uniform(0.2, 1.0))


def settings(d):
    """Every show --json of daemon d, parsed."""
    got = {}
    for what in SHOWS:
        r = d.ctl(what, "show", "--json")
        if r.returncode != 0:
            fail("%s: portsharectl %s show --json exited %d: %s" % (d.name, what, r.returncode, r.stderr.strip()))
        try:
            got[what] = json.loads(r.stdout)
        except ValueError as e:
            fail("%s: portsharectl %s show --json printed invalid JSON (%s): %r" % (d.name, what, e, r.stdout))
    return got


def differences(got, want):
    return "; ".join("%s show: %s, expected %s" % (w, json.dumps(got[w]), json.dumps(want[w]))
                     for w in SHOWS if got[w] != want[w])


with Story(time_limit=110) as s:
    seed = int(os.environ.get("PORTSHARE_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    say("seed %d (PORTSHARE_SEED=%d repeats this run)" % (seed, seed))
    state = s.path("state")
    sock = s.path("control.sock")
    tmp = os.path.join(state, "settings.tmp")
    n = [0]

    def start():
        """A daemon on the state directory; its seccomp line; no temp file left."""
        n[0] += 1
        d = s.daemon(listen=CONFIG_LISTEN, sock=sock, state_dir=state, name="portshared-%03d" % n[0])
        if s.sanitizer:
            want = "no seccomp filter (sanitizer build)"
        else:
            want = "seccomp allow list loaded"
        if want not in d.log():
            fail("%s's log does not say %r:\n%s" % (d.name, want, indent(tail(d.log(), 10))))
        if os.path.exists(tmp):
            fail("%s is ready and %s is still there" % (d.name, tmp))
        return d

    def retire(d):
        """A killed daemon whose successor checked out: its log is scanned here, and it is
        dropped from the story's lists so that a failure shows only the last daemons."""
        text = d.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                fail("%s (pid %d) printed %r:\n%s" % (d.name, d.pid, mark, indent(tail(text, 60))))
        s.daemons.remove(d)
        s.procs.remove(d)

    model = Model()
    d = start()
    check(s.sanitizer or "seccomp allow list loaded" in d.log(),
          "the daemon runs with the seccomp allow list loaded" if not s.sanitizer
          else "(sanitizer build: the daemon loads no seccomp filter)")
    check_eq(settings(d), model.shows(), "a new state directory: no settings, the config's listen list")

    kills = in_flight = equal_before = equal_after = torn_writes = 0
    changes = refused = 0
    took = []  # seconds each answered change took, portsharectl's start to its exit
    t0 = time.monotonic()
    for round_ in range(1, KILLS + 1):
        if time.monotonic() - t0 > LOOP_BUDGET:
            fail("only %d of %d kills in %.0f s" % (kills, KILLS, LOOP_BUDGET))
        # a few changes that return: each one's answer is what the model says
        for _ in range(rng.randrange(4)):
            ch = random_change(rng, model, valid=False)
            ok, after = model.apply(ch)
            t = time.monotonic()
            r = d.ctl(*argv(ch))
            if ok:
                took.append(time.monotonic() - t)
            if (r.returncode == 0) != ok:
                fail("round %d: portsharectl %s exited %d (%s), expected %s"
                     % (round_, " ".join(argv(ch)), r.returncode, r.stderr.strip() or r.stdout.strip(),
                        "success" if ok else "a refusal"))
            changes += ok
            refused += not ok
            model = after

        # the change in flight: one that changes what the shows print
        for _ in range(100):
            ch = random_change(rng, model)
            ok, after = model.apply(ch)
            if ok and after.shows() != model.shows():
                break
        else:
            fail("no change to make from %r" % model.shows())
        before = model
        p = subprocess.Popen([s.bin("portsharectl"), "--socket", sock] + argv(ch), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=s.env, cwd=s.dir)
        time.sleep(kill_delay(rng, took))
        flying = p.poll() is None
        d.kill9()
        if d.p.returncode != -signal.SIGKILL:
            fail("%s (pid %d) exited on its own (status %s) before the kill:\n%s"
                 % (d.name, d.pid, d.p.returncode, indent(tail(d.log(), 20))))
        kills += 1
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            fail("round %d: portsharectl %s still runs 10 s after the daemon was killed" % (round_, " ".join(argv(ch))))
        err = err.decode("utf-8", "replace")
        for mark in SANITIZER_MARKS:
            if mark in err:
                fail("portsharectl printed %r:\n%s" % (mark, indent(tail(err, 60))))
        if p.returncode == 0:
            allowed = {"after": after}  # answered: it was made before the kill
        elif not flying:
            fail("round %d: portsharectl %s exited %d before the kill: %s"
                 % (round_, " ".join(argv(ch)), p.returncode, err.strip()))
        else:
            allowed = {"before": before, "after": after}
        in_flight += flying
        # killed between the temp file's creation and its rename: the old file is in place
        torn = os.path.exists(tmp)
        torn_writes += torn
        if torn:
            allowed.pop("after", None)
            if not allowed:
                fail("round %d: portsharectl %s was answered, yet %s is still there"
                     % (round_, " ".join(argv(ch)), tmp))

        killed = d
        d = start()
        got = settings(d)
        which = [name for name, m in allowed.items() if got == m.shows()]
        if not which:
            fail("round %d, after SIGKILL with portsharectl %s %s (exit %d%s): the state is not %s:\n  %s"
                 % (round_, " ".join(argv(ch)), "in flight" if flying else "answered", p.returncode,
                    ", %s left" % os.path.basename(tmp) if torn else "", " nor ".join(allowed),
                    "\n  ".join("%s: %s" % (name, differences(got, m.shows())) for name, m in allowed.items())))
        if which == ["before"]:
            equal_before += 1
            model = before
        else:
            equal_after += 1
            model = after
            changes += 1
        retire(killed)

    elapsed = time.monotonic() - t0
    say("%d kills in %.1f s: %d with the change in flight (its portsharectl had not returned), %d of them "
        "between the temp file's creation and its rename; the state after the restart was the one before "
        "the change %d times, the one after it %d times; %d changes made and %d refused as expected along "
        "the way" % (kills, elapsed, in_flight, torn_writes, equal_before, equal_after, changes, refused))
    check(kills >= 200, "%d daemons killed, each state loaded by the next one and equal to the state before "
          "or after the change in flight" % kills)
    check(in_flight > 0, "%d kills landed while a change was in flight" % in_flight)
    check_eq(equal_before + equal_after, kills, "states equal to before (%d) or after (%d) the change in flight"
             % (equal_before, equal_after))
    check(not os.path.exists(tmp), "no settings.tmp after the last start")

    # a clean stop and a clean start: the same settings; a temp file a kill left (torn
    # mid-write here) is removed and ignored
    check_eq(d.stop(8.0), 0, "the last daemon stops (SIGTERM): exit status")
    with open(os.path.join(state, "settings"), "rb") as f:
        whole = f.read()
    with open(tmp, "wb") as f:
        f.write(whole[: len(whole) // 2])
    d = start()
    check(not os.path.exists(tmp), "after a clean start the state directory holds no settings.tmp: %s"
          % sorted(os.listdir(state)))
    check_eq(settings(d), model.shows(), "after a clean stop and start the settings are the model's")
