"""Write the fuzzers' seed corpus (csrc/fuzz/corpus/): a handful of small,
meaningful inputs the fuzzers start from.  Rerun after changing the input
encoding of fuzz_jobs.c or fuzz_parsers.c:  python3 csrc/fuzz/make_seeds.py
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
NOPS = 40
OPS = dict(begin=0, begin_async=3, nested=4, start=6, end=7, end_nested=9, end_async=10,
           mask=11, set_phase=12, start_phase=14, cont=15, finish=16, check=17, abort=18,
           abort_apply=19, check_abort=20, wait=21, cancel=23, ref=24, unref=25,
           remove=26, cancel_waiters=27, detach=28, poll=29, wcancel=31, take=32,
           unclaimed=33, agent=34, agent_nowait=36, nowait=37, end_agent=38, read=39)
JOB = dict(query=1, destroy=2, suspend=3, modify=4, abort=5, migop=6)
AGENT = dict(query=1, modify=2)
ASYNC = dict(out=1, inn=2, save=3, dump=4)
PHASE = dict(none=0, perform2=1, begin3=2, perform3=3, perform3_done=4, confirm3=6,
             prepare=7, finish2=8, finish3=9)


def op(name, dom=0, value=0, timeout=1, api=1, mod=11):
    """One (op, arg) pair: value is the job / kind / phase, decoded by fuzz_jobs.c
    as arg % 11 - 1 (jobs), arg % 7 - 1 (kinds), arg % 12 - 1 (phases);
    timeout index (arg >> 3) % 8 (1 = 1e6 s); api index (arg >> 5) % 5."""
    code = OPS[name]
    byte = (code - (128 % NOPS)) % NOPS + 128 if dom else code
    assert byte % NOPS == code and byte >> 7 == dom
    for arg in range(256):
        if arg % mod == value + 1 and (arg >> 3) % 8 == timeout and (arg >> 5) % 5 == api:
            return bytes([byte, arg])
    for arg in range(256):  # relax timeout/api
        if arg % mod == value + 1:
            return bytes([byte, arg])
    raise ValueError((name, value))


def kind(name, k, **kw):
    data = op(name, value=ASYNC[k], mod=7, **kw)
    return data + b"\0\0" if name == "start" else data  # start reads two mask bytes


def phase(name, p, **kw):
    return op(name, value=PHASE[p], mod=12, **kw)


JOBS = {
    "migration_v3": bytes([0]) + kind("start", "out") + phase("set_phase", "begin3")
    + op("cont") + kind("check", "out") + phase("start_phase", "perform3")
    + kind("nested", "out") + op("end_nested") + phase("set_phase", "perform3_done")
    + phase("set_phase", "begin3") + op("cont") + phase("start_phase", "confirm3")
    + op("finish"),
    "contention": bytes([0]) + op("begin", value=JOB["modify"]) + op("begin", value=JOB["query"])
    + kind("begin_async", "save") + op("detach") + op("end") + op("take") + op("wait")
    + op("end") + op("poll") + op("end_async"),
    "abort": bytes([0]) + kind("begin_async", "save") + op("abort") + op("check_abort")
    + kind("nested", "save") + op("begin", value=JOB["query"]) + op("abort")
    + op("end_nested") + op("wait") + op("abort_apply") + op("end_async"),
    "remove_with_waiters": bytes([0]) + op("begin", value=JOB["modify"])
    + op("begin", value=JOB["query"]) + op("begin", dom=1, value=JOB["query"])
    + op("remove") + op("wait") + op("end") + op("read"),
    "cancel_waiters_notifier": bytes([0x05]) + op("begin", value=JOB["query"])
    + op("begin", value=JOB["modify"]) + op("detach") + op("begin", value=JOB["destroy"])
    + op("cancel_waiters") + op("take") + op("wait") + op("end"),
    "refs_and_mask": bytes([0x30]) + op("ref") + kind("start", "inn")
    + op("mask", value=3) + op("begin", value=JOB["query"], timeout=0)
    + phase("start_phase", "prepare") + phase("set_phase", "perform2") + op("cont")
    + op("unref") + op("finish"),
    "agent_slot": bytes([0x00]) + op("begin", value=JOB["modify"])
    + op("agent", value=AGENT["modify"], mod=5) + op("agent", value=AGENT["query"], mod=5)
    + op("nowait", value=JOB["query"]) + op("agent_nowait", value=AGENT["query"], mod=5)
    + op("unclaimed") + op("end_agent") + op("wait") + op("end") + op("end_agent")
    + kind("start", "inn") + op("agent", value=AGENT["query"], mod=5) + op("end_agent")
    + op("finish"),
}

PARSERS = {
    "perform3": b"\x01" + struct.pack("<i", 3) + b"perform3",
    "preform2": b"\x02" + struct.pack("<i", -1) + b"preform2",
    "none_save": b"\x03" + struct.pack("<i", 9) + b"none",
    "query": b"\x00" + struct.pack("<i", 8) + b"query",
    "migration_out": b"\xff" + struct.pack("<i", 2**31 - 1) + b"migration out",
    "unbounded": b"\x05" + struct.pack("<i", 78) + b"unbounded",
}

for sub, seeds in (("jobs", JOBS), ("parsers", PARSERS)):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
