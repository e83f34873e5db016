"""Run the pad's test vectors through padcore and padjournal; the same file runs under CPython (pytest)
and under MicroPython (the WebAssembly port, from run.mjs). ``run(vectors, workdir)`` returns, per case,
what each step gave: the effects and the mode (padcore), or the pending ratings (padjournal)."""

import padcore
import padjournal


def run_core(case):
    state = padcore.new_state(case["window"], case.get("settings"))
    out = []
    for step in case["steps"]:
        before = state
        state, effects = padcore.handle(state, step["event"], step["at"])
        if effects and effects[0][0] == "error" and state is not before:
            raise AssertionError("an error changed the state")
        out.append({"effects": effects, "mode": state["mode"]})
    return out


def run_journal(case, workdir):
    path = workdir + "/" + case["name"] + ".jsonl"
    j = padjournal.Journal(path, case.get("compact_at", 200))
    out = []
    for step in case["steps"]:
        op = step[0]
        if op == "add":
            j.add(step[1], step[2], step[3])
        elif op == "done":
            j.done(step[1])
        elif op == "reopen":
            j = padjournal.Journal(path, case.get("compact_at", 200))
        elif op == "tear":
            with open(path, "a") as f:
                f.write(step[1])
        else:
            raise ValueError("unknown journal step " + repr(op))
        out.append({"pending": [[r["req"], r["ticket"], r["level"], r["at"]] for r in j.pending], "lines": j.lines})
    return out


def run(vectors, workdir):
    results = {}
    for case in vectors["core"]:
        results[case["name"]] = run_core(case)
    for case in vectors["journal"]:
        results[case["name"]] = run_journal(case, workdir)
    return results
