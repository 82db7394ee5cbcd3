#!/usr/bin/python3
"""Execute one Jupyter notebook with a kernel and write the outputs back (helper of lib/viz/notebook_runner.ts).

Why not `jupyter nbconvert --execute`: the Deno kernel (2.9.6) sends some display outputs after it
reports the cell idle, and nbconvert stops reading at idle, so it drops outputs in about 5-15% of
runs. Here, after a cell's idle status and its execute_reply, iopub is read on until it has been
silent for `--silence` seconds (0.25 s got every output in 40 of 40 runs) before the next cell is
sent. Waiting matters twice: a late output sent after the next request has started carries that
request's parent id, so it would land in the wrong cell (seen here with no wait: 3 runs in 8 lost
or misplaced outputs of a cell with 40 unawaited displays; with 0.25 s, none).

Usage (the Deno runner calls it; run it by hand with Debian's interpreter, /usr/bin/python3):
    run_notebook.py probe [--kernel deno]
        one JSON line: {"ok": bool, "missing": [...], "kernelspec": path|null, ...}
    run_notebook.py run NOTEBOOK --out PATH [--kernel deno] [--timeout S] [--silence S]
        progress on stderr; one JSON line on stdout: {"ok": true, "cells": n, "seconds": s, ...}
        or {"ok": false, "cell": i, "ename": ..., "evalue": ..., "traceback": "..."}; exit 0 / 1.
        On failure the outputs up to the failing cell are written to PATH only when PATH is not
        NOTEBOOK itself (so a failing run never overwrites a committed notebook).

Only the standard library, jupyter_client and nbformat (Debian: jupyter-client, python3-nbformat).
"""

import argparse
import json
import os
import queue
import re
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def eprint(*args):
    print(*args, file=sys.stderr, flush=True)


def probe(kernel):
    """What is there: the Python modules and the kernelspec."""
    out = {"ok": False, "python": sys.executable, "missing": [], "kernelspec": None}
    try:
        import jupyter_client

        out["jupyter_client"] = jupyter_client.__version__
    except ImportError:
        out["missing"].append("jupyter_client")
    try:
        import nbformat

        out["nbformat"] = nbformat.__version__
    except ImportError:
        out["missing"].append("nbformat")
    if "jupyter_client" not in out["missing"]:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
        out["kernelspec"] = specs.get(kernel)
        if out["kernelspec"] is None:
            out["missing"].append(f"kernelspec {kernel}")
    out["ok"] = not out["missing"]
    return out


class Collector:
    """Routes iopub messages to the outputs of the cell whose execute request they answer."""

    def __init__(self, nbformat):
        self.nbformat = nbformat
        self.cell_of = {}  # msg_id -> cell
        self.idle = set()  # msg_ids whose kernel status went idle
        self.display = {}  # display_id -> [(cell, output index)]
        self.pending_clear = {}  # msg_id -> True when clear_output(wait=True) is pending
        self.errors = {}  # msg_id -> error output
        self.counts = {}  # msg_id -> number of outputs received

    def add(self, msg):
        parent = msg.get("parent_header", {}).get("msg_id")
        cell = self.cell_of.get(parent)
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "status":
            if content.get("execution_state") == "idle" and parent in self.cell_of:
                self.idle.add(parent)
            return
        if cell is None:
            return
        if kind == "execute_input":
            cell["execution_count"] = content.get("execution_count")
            return
        if kind == "clear_output":
            if content.get("wait"):
                self.pending_clear[parent] = True
            else:
                self._clear(cell)
            return
        if kind == "update_display_data":
            did = content.get("transient", {}).get("display_id")
            for c, i in self.display.get(did, []):
                out = c["outputs"][i]
                out["data"] = content.get("data", {})
                out["metadata"] = content.get("metadata", {})
            self.counts[parent] = self.counts.get(parent, 0) + 1
            return
        if kind not in ("stream", "display_data", "execute_result", "error"):
            return
        if self.pending_clear.pop(parent, False):
            self._clear(cell)
        self.counts[parent] = self.counts.get(parent, 0) + 1
        out = self.nbformat.v4.output_from_msg(msg)
        outputs = cell["outputs"]
        if kind == "stream" and outputs and outputs[-1]["output_type"] == "stream" and (
            outputs[-1]["name"] == out["name"]
        ):
            outputs[-1]["text"] += out["text"]  # consecutive prints become one output, as Jupyter shows them
            return
        outputs.append(out)
        if kind == "display_data":
            did = content.get("transient", {}).get("display_id")
            if did:
                self.display.setdefault(did, []).append((cell, len(outputs) - 1))
        if kind == "error":
            self.errors[parent] = out

    def _clear(self, cell):
        cell["outputs"] = []
        for did in list(self.display):
            self.display[did] = [(c, i) for c, i in self.display[did] if c is not cell]


def drain(kc, collector, silence):
    """Read iopub until it has been silent for `silence` seconds."""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=silence)
        except queue.Empty:
            return
        collector.add(msg)


def run(args):
    import nbformat
    from jupyter_client import KernelManager

    path = os.path.abspath(args.notebook)
    out_path = os.path.abspath(args.out)
    nb = nbformat.read(path, as_version=4)
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for _, c in code_cells:
        c.outputs = []
        c.execution_count = None
    env = dict(os.environ)
    km = KernelManager(kernel_name=args.kernel)
    t0 = time.time()
    km.start_kernel(cwd=os.path.dirname(path), env=env)
    kc = km.client()
    kc.start_channels()
    result = {"ok": True, "notebook": path, "cells": len(code_cells), "cellSeconds": []}
    collector = Collector(nbformat)
    current = None  # (notebook cell index, code cell index) of the cell running now
    try:
        kc.wait_for_ready(timeout=args.startup_timeout)
        info = kc.kernel_info(reply=True, timeout=args.startup_timeout)["content"]
        nb.metadata["kernelspec"] = {
            "name": args.kernel,
            "display_name": km.kernel_spec.display_name,
            "language": km.kernel_spec.language,
        }
        if "language_info" in info:
            nb.metadata["language_info"] = info["language_info"]
        drain(kc, collector, args.silence)  # startup chatter
        for n, (index, cell) in enumerate(code_cells):
            current = (index + 1, n + 1)
            tc = time.time()
            first = cell.source.strip().split("\n")[0][:60]
            eprint(f"  cell {index + 1}/{len(nb.cells)} ({n + 1}/{len(code_cells)} code): {first}")
            msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False)
            collector.cell_of[msg_id] = cell
            reply = None
            deadline = tc + args.timeout
            while reply is None or msg_id not in collector.idle:
                if time.time() > deadline:
                    raise TimeoutError(f"cell {index + 1} ran past the {args.timeout:g} s limit (--timeout)")
                if not km.is_alive():
                    raise RuntimeError(f"the kernel died while running cell {index + 1}")
                try:
                    collector.add(kc.get_iopub_msg(timeout=0.05))
                except queue.Empty:
                    pass
                if reply is None:
                    try:
                        r = kc.get_shell_msg(timeout=0.0)
                        if r["parent_header"].get("msg_id") == msg_id:
                            reply = r
                    except queue.Empty:
                        pass
            # The Deno kernel's late outputs: keep reading until iopub is quiet.
            drain(kc, collector, args.silence)
            content = reply["content"]
            if content.get("execution_count") is not None:
                cell.execution_count = content["execution_count"]
            seconds = time.time() - tc
            result["cellSeconds"].append(round(seconds, 3))
            err = collector.errors.get(msg_id)
            if content.get("status") != "ok" or err is not None:
                ename = content.get("ename") or (err or {}).get("ename", "Error")
                evalue = content.get("evalue") or (err or {}).get("evalue", "")
                tb = content.get("traceback") or (err or {}).get("traceback", [])
                result.update(
                    ok=False,
                    cell=index + 1,
                    codeCell=n + 1,
                    ename=ename,
                    evalue=ANSI.sub("", str(evalue)),
                    traceback=ANSI.sub("", "\n".join(tb)),
                    source=cell.source,
                )
                break
        result["outputs"] = [len(c.outputs) for _, c in code_cells]
    except Exception as e:  # the kernel failed to start, died or timed out
        result.update(ok=False, ename=type(e).__name__, evalue=str(e), traceback="")
        result["cell"], result["codeCell"] = current if current else (None, None)
    finally:
        kc.stop_channels()
        try:
            km.shutdown_kernel(now=False)
        except Exception:
            km.shutdown_kernel(now=True)
    result["seconds"] = round(time.time() - t0, 3)
    if result["ok"] or out_path != path:
        nbformat.validate(nb)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        tmp = out_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, out_path)
        result["written"] = out_path
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("probe")
    pp.add_argument("--kernel", default="deno")
    pr = sub.add_parser("run")
    pr.add_argument("notebook")
    pr.add_argument("--out", required=True)
    pr.add_argument("--kernel", default="deno")
    pr.add_argument("--timeout", type=float, default=3600.0, help="seconds per cell")
    pr.add_argument("--silence", type=float, default=0.25, help="quiet iopub seconds that end a cell")
    pr.add_argument("--startup-timeout", type=float, default=120.0)
    args = p.parse_args()
    if args.command == "probe":
        print(json.dumps(probe(args.kernel)))
        return 0
    missing = probe(args.kernel)["missing"]
    if missing:
        print(json.dumps({"ok": False, "ename": "MissingJupyter", "evalue": ", ".join(missing)}))
        return 1
    result = run(args)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
