"""What the demo prints: the header, the timeline of the shown domains, the
result and the summary -- a mixin of Demo."""

from __future__ import annotations

import collections
from typing import Dict, List, Sequence, TextIO, Tuple

from .plan import MODIFY_CLIENTS, QUERY_CLIENTS, DemoResult, Event, _ms, _n


class Report:
    """The printing half of Demo (whose records it reads)."""

    out: TextIO

    def p(self, line: str = "") -> None:
        print(line, file=self.out)

    def header(self) -> None:
        a = self.args
        if a.quiet:
            return
        self.p(f"pymigjob demo: {a.domains} domains, {a.threads} migration workers, "
               f"{QUERY_CLIENTS} query + {MODIFY_CLIENTS} modify + 1 guest-agent + "
               f"1 destination-query + aborter + destroyer threads; MODIFY timeout {a.timeout:g} s; seed {self.seed}")
        self.p("v3 migration with change protection: begin3 -> prepare3 -> perform3 -> "
               "finish3 -> confirm3, each call on another pool worker")
        fates = collections.defaultdict(list)
        for name in self.names:
            fates[self.plan[name].describe()].append(name)
        self.p("plan: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in fates.items()))

    def shown_domains(self) -> List[str]:
        a = self.args
        if a.verbose or a.show >= len(self.names):
            return list(self.names)
        if a.show > 0:
            return self.names[: a.show]
        shown, seen = [], set()
        for name in self.names:              # one domain per planned fate
            key = self.plan[name].describe()
            if key not in seen:
                seen.add(key)
                shown.append(name)
        return shown

    def timeline(self) -> None:
        shown = self.shown_domains()
        every_query = self.args.verbose >= 2
        self.p()
        more = "" if len(shown) == len(self.names) else \
            "; --show N or --verbose for more domains"
        self.p(f"timeline of {', '.join(shown)} (seconds since start; "
               f"{'every query listed' if every_query else 'runs of queries summarised'}{more})")
        self.p("refs = the domain list's 1 + one per job or phase held or waited for, "
               "other threads' queries included")
        self.p(f"{'time':>8}  {'thread':<10} {'domain':<6} {'where':<22} event")
        def collapsible(e: Event) -> bool:
            if e.kind in ("query", "migop", "dstquery", "agent"):
                return True
            return e.kind == "modify" and e.data.get("result") == "ran"

        rows: List[Tuple[float, int, str]] = []
        buckets: Dict[Tuple[str, str], List[Event]] = {}

        def row(t: float, thread: str, dom: str, where: str, text: str) -> None:
            rows.append((t, len(rows),
                         f"{t:8.3f}  {thread:<10} {dom:<6} {where:<22} {text}"))

        def flush(key: Tuple[str, str]) -> None:
            evs = buckets.pop(key, None)
            if not evs:
                return
            first = evs[0]
            if len(evs) == 1:
                e = first
                row(e.t, e.thread, e.domain, f"{e.side}/{e.phase}", e.text)
                return
            nthreads = len({e.thread for e in evs})
            row(first.t, f"{nthreads} thread{'s' if nthreads > 1 else ''}", first.domain,
                f"{first.side}/{_span([e.phase for e in evs])}",
                _summarise(evs, evs[-1].t - first.t))

        shown_set = set(shown)
        for e in sorted(self.events, key=lambda e: e.t):
            if e.domain not in shown_set:
                continue
            if collapsible(e) and not every_query:
                key = (e.domain, e.side)
                buckets.setdefault(key, []).append(e)
                continue
            for key in [k for k in buckets if k[0] == e.domain]:
                flush(key)
            where = f"{e.side}/{e.phase}" if e.side else e.phase
            row(e.t, e.thread, e.domain, where, e.text)
        for key in list(buckets):
            flush(key)
        for _, _, line in sorted(rows):
            self.p(line)

    def result(self, elapsed: float, hung: bool) -> DemoResult:
        outcomes = {n: m.outcome or "unfinished" for n, m in self.migrations.items()}
        count = collections.Counter(outcomes.values())
        queries = [e for e in self.events if e.kind == "query"]
        modifies = collections.Counter(e.data["result"] for e in self.events if e.kind == "modify")
        timeouts = collections.Counter(
            e.data["holder"] for e in self.events if e.data.get("result") == "timeout")
        final_refs = {}
        if not hung:
            final_refs = {f"src:{n}": self.handles[n].refs for n in self.names}
            for n, m in self.migrations.items():
                if m.dst is not None:
                    final_refs[f"dst:{n}"] = m.dst.refs
        exit_code = 2 if hung else (1 if self.failures else 0)
        return DemoResult(
            exit_code=exit_code, seed=self.seed, elapsed=elapsed, outcomes=outcomes,
            completed=count["completed"], aborted=count["aborted"],
            destroyed=count["destroyed"], queries=len(queries),
            queries_during_migration=sum(1 for e in queries if e.data["during"]),
            modifies=dict(modifies), timeouts=dict(timeouts), final_refs=final_refs,
            checks=self.checks, failures=list(self.failures))

    def summary(self, r: DemoResult) -> None:
        a = self.args
        ev = self.events
        p = self.p
        p()
        p(f"summary ({r.elapsed:.2f} s, seed {self.seed}; rerun with --seed {self.seed})")

        def line(label: str, text: str) -> None:
            p(f"  {label:<15} {text}")

        def more(text: str) -> None:
            p(f"  {'':<15} {text}")

        n = len(self.names)
        crashed = [k for k, v in r.outcomes.items() if v not in ("completed", "aborted", "destroyed")]
        line("migrations", f"{n} started: {r.completed} completed, {r.aborted} aborted, "
                           f"{r.destroyed} failed (domain destroyed)"
                           + (f", {len(crashed)} did not end cleanly: {', '.join(crashed)}"
                              if crashed else ""))
        for name, mig in self.migrations.items():
            if mig.outcome in ("aborted", "destroyed"):
                more(f"{name}: {mig.cancel[1] if mig.cancel else ''} -> confirm3_cancelled, "
                     f"incoming domain removed")
            elif mig.fate.kind == "postcopy" and mig.outcome == "completed":
                more(f"{name}: post-copy failed in perform3 (both jobs parked, async_paused) "
                     f"-> resumed: begin/prepare/perform/finish/confirm_resume, completed")
        late = [e for e in ev if e.kind == "abort" and e.data.get("point") == "perform3_done"]
        for e in late:
            mig = self.migrations[e.domain]
            if e.data["result"] == "flagged":
                more(f"{e.domain}: abort came after perform3_done; flag raised, nothing "
                     f"checked it, migration {mig.outcome}, flag cleared with the job")
            else:
                more(f"{e.domain}: abort came after the migration ended: {e.text.split(': ', 1)[1]}")
        calls = sum(len(m.calls) for m in self.migrations.values())
        workers = len({t for m in self.migrations.values() for _, t in m.calls})
        line("API calls", f"{calls} on {workers} of {a.threads} pool workers"
                          + ("; each one on another thread than the call before"
                             if a.threads > 1 else " (one worker: no thread hand-over)"))
        nested = sum(m.nested for m in self.migrations.values())
        nmax = max((m.nested_max_wait for m in self.migrations.values()), default=0.0)
        line("nested jobs", f"{nested} pretend monitor calls; longest wait for the sync "
                            f"slot {_ms(nmax)}")
        q = [e for e in ev if e.kind == "query"]
        during = collections.Counter(e.phase for e in q if e.data["during"])
        qmax = max((e.data["waited"] for e in q), default=0.0)
        line("queries", f"{len(q)} served, {r.queries_during_migration} of them during a "
                        f"migration out ({_counts(during)}); longest wait {_ms(qmax)}")
        mo = [e for e in ev if e.kind == "migop"]
        line("migration ops", f"{len(mo)} migrateSetMaxSpeed: "
                              f"{sum(e.data['result'] == 'applied' for e in mo)} applied during a "
                              f"migration, {sum(e.data['result'] == 'refused' for e in mo)} refused "
                              f"(not being migrated)")
        m = [e for e in ev if e.kind == "modify"]
        mw = [e.data["waited"] for e in m if e.data["result"] == "waited"]
        line("modifies", f"{len(m)} MODIFY jobs: {r.modifies.get('ran', 0)} ran at once, "
                         f"{len(mw)} waited for a migration to end and ran"
                         + (f" (avg {_ms(sum(mw) / len(mw))}, max {_ms(max(mw))})" if mw else "")
                         + f", {r.modifies.get('timeout', 0)} gave up after {a.timeout:g} s")
        ag = [e for e in ev if e.kind == "agent"]
        line("agent jobs", f"{len(ag)} guest-agent calls, none refused: "
                           f"{sum(e.data['beside_monitor'] for e in ag)} ran while a monitor "
                           f"(sync) job was held, {sum(e.data['during'] for e in ag)} during an "
                           f"async job (the agent slot waits for neither); longest wait "
                           f"{_ms(max((e.data['waited'] for e in ag), default=0.0))}")
        dq = collections.Counter(e.data["result"] for e in ev if e.kind == "dstquery")
        line("dest queries", f"{sum(dq.values())} getJobInfo on the destination: "
                             f"{dq.get('served', 0)} served, {dq.get('timeout', 0)} timed out "
                             f"(MIGRATION_IN allows only DESTROY and modify migration safe), {dq.get('absent', 0)} found no "
                             f"domain, {dq.get('removed', 0)} saw it removed while waiting")
        to = [e for e in ev if e.data.get("result") == "timeout"]
        if to:
            by = collections.defaultdict(collections.Counter)
            for e in to:
                by[e.data["holder"]][f"{'modify' if e.kind == 'modify' else 'dest query'}"
                                     f" during {e.phase}"] += 1
            line("timeouts", f"{len(to)} jobs gave up; who held the lock:")
            for holder, c in sorted(by.items(), key=lambda kv: -sum(kv[1].values())):
                more(f"held by {holder}: {sum(c.values())} ({_counts(c)})")
        else:
            line("timeouts", "no job timed out")
        ab = [e for e in ev if e.kind == "abort"]
        line("aborts", f"{len(ab)} abortJob calls: {sum(e.data['result'] == 'flagged' for e in ab)} "
                       f"raised the flag, {sum(e.data['result'] == 'refused' for e in ab)} refused; "
                       f"{r.aborted} migrations cancelled at the Perform3 checkpoint")
        de = [e for e in ev if e.kind == "destroy" and e.data.get("result") == "destroyed"]
        line("destroys", f"{_n(len(de), 'DESTROY job')} during migrations"
                         + (": " + ", ".join(f"{e.domain} ({e.phase})" for e in de) if de else ""))
        if r.final_refs:
            kept = [n for n in self.names
                    if r.outcomes[n] == "completed" and f"dst:{n}" in r.final_refs]
            gone = [n for n in self.names if r.outcomes[n] in ("aborted", "destroyed")]
            line("final refs", "source " + _refs(r.final_refs, "src", self.names))
            more("destination " + _refs(r.final_refs, "dst", kept)
                 + ("; removed and freed: " + _refs(r.final_refs, "dst", gone) if gone else ""))
        if r.failures:
            line("invariants", f"{len(r.failures)} of {r.checks} checks FAILED:")
            shown = r.failures[:20]
            for f in shown:
                more("- " + f)
            if len(r.failures) > len(shown):
                more(f"... and {len(r.failures) - len(shown)} more")
            for prob in self.problems[:3]:
                p(prob)
        else:
            line("invariants", f"all {r.checks} checks passed")
        p("result: " + ("OK" if r.exit_code == 0 else
                        "HUNG" if r.exit_code == 2 else "FAILED") + f" (exit {r.exit_code})")


def _span(phases: Sequence[str]) -> str:
    seen: List[str] = []
    for ph in phases:
        if not seen or seen[-1] != ph:
            seen.append(ph)
    if len(seen) > 3:
        seen = [seen[0], "..", seen[-1]]
    return "->".join(seen)


def _refs(final: Dict[str, int], side: str, names: Sequence[str]) -> str:
    """vm1=1 vm2=1 ... for a few domains; grouped by value for many."""
    if not names:
        return "-"
    if len(names) <= 12:
        return " ".join(f"{n}={final.get(f'{side}:{n}', '?')}" for n in names)
    by = collections.defaultdict(list)
    for n in names:
        by[final.get(f"{side}:{n}", "?")].append(n)
    return "; ".join(f"refs {v}: {len(ns)} domains" + (f" ({', '.join(ns)})" if len(ns) <= 5 else "")
                     for v, ns in sorted(by.items(), key=lambda kv: str(kv[0])))




def _counts(c: Dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"


def _summarise(evs: Sequence[Event], span: float) -> str:
    kinds = collections.Counter(e.kind for e in evs)
    if kinds.get("dstquery"):
        res = collections.Counter(e.data["result"] for e in evs)
        holders = collections.Counter(e.data["holder"] for e in evs if "holder" in e.data)
        text = f"{len(evs)} destination getJobInfo: {_counts(res).replace('absent', 'no domain')}"
        if holders:
            text += f" (held by {', '.join(holders)})"
        return text + f" over {_ms(span)}"
    q = [e for e in evs if e.kind == "query"]
    mo = [e for e in evs if e.kind == "migop"]
    md = [e for e in evs if e.kind == "modify"]
    parts = []
    if q:
        during = sum(1 for e in q if e.data["during"])
        parts.append(f"{len(q)} queries" + (f" ({during} during the migration)" if during else ""))
    if mo:
        parts.append(f"{len(mo)} migrateSetMaxSpeed "
                     f"({_counts(collections.Counter(e.data['result'] for e in mo))})")
    if md:
        parts.append(f"{len(md)} MODIFY ran at once")
    wmax = max(e.data["waited"] for e in evs)
    return f"{', '.join(parts)} over {_ms(span)}; longest wait {_ms(wmax)}"
