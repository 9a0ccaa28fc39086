#!/usr/bin/python3
"""The accuracy-vs-FLOPs study on MiniLLaVA's test split: `ficoco eval` for no reduction and
every token-reduction method at a set of visual-token budgets, on the four test files
(GQA-, POPE-, TextVQA- and ScienceQA-style), then one table of accuracy per question type
with the measured LLM prefill TFLOPs, and `ficoco eval-report`'s score-vs-TFLOPs plots.

Runs are resumable (each is a `ficoco eval` output directory; finished ones are skipped),
so an interrupted study continues where it stopped.

  study.py --ficoco build/ficoco --model assets/minillava --data DATA --out OUT [--docs docs/minillava-study]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys

# bench -> (questions file, annotations, question types it holds)
BENCHES = {
    "gqa": ("gqa_questions.jsonl", "gqa_answers.json"),
    "pope": ("pope_questions.jsonl",
             "pope_labels_random.jsonl,pope_labels_popular.jsonl,pope_labels_adversarial.jsonl"),
    "textvqa": ("textvqa_questions.jsonl", "textvqa_annotations.json"),
    "sqa": ("llava_test_CQM-I.json", "problems.json"),
}
TYPES = ["colour", "shape", "count", "position", "exist", "read", "mc"]
TYPE_TITLES = {"colour": "colour", "shape": "shape", "count": "count", "position": "position",
               "exist": "existence (POPE acc.)", "read": "reading (TextVQA)", "mc": "multiple choice (SQA)"}


def methods_of(ficoco):
    """Every method `ficoco methods` lists, in its order."""
    out = subprocess.run([ficoco, "methods"], check=True, capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]


def run_name(method, keep):
    return "none" if method == "none" else f"{method}-{keep}"


def finished(run_dir):
    path = os.path.join(run_dir, "score.json")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        s = json.load(f)
    return s.get("answered") == s.get("questions")


def eval_one(a, bench, method, keep):
    questions, annotations = BENCHES[bench]
    test = os.path.join(a.data, "test")
    out = os.path.join(a.out, "runs", bench, run_name(method, keep))
    if finished(out):
        return out, "done before"
    cmd = [a.ficoco, "eval", "--model", a.model, "--bench", bench,
           "--questions", os.path.join(test, questions), "--images", os.path.join(a.data, "images", "test"),
           "--annotations", ",".join(os.path.join(test, x) for x in annotations.split(",")),
           "--out", out, "--compute", a.compute, "--threads", "1", "--progress", "lines"]
    if method != "none":
        cmd += ["--method", method, "--keep", str(keep)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        errors = [line for line in r.stderr.splitlines() if "error:" in line] or r.stderr.strip().splitlines()
        return out, "FAILED: " + (errors[0] if errors else "(no message)")
    return out, "ok"


def type_scores(run_dirs):
    """{type: (accuracy %, n)}, mean TFLOPs and visual tokens over the questions of one configuration."""
    scores, flops, tokens, n_all = {}, 0.0, 0.0, 0
    for bench, d in run_dirs.items():
        with open(os.path.join(d, "score.json")) as f:
            s = json.load(f)
        det, n = s["score"]["details"], s["questions"]
        if bench == "gqa":
            for cat, v in det["categories"].items():
                scores[cat] = (v["accuracy"], v["n"])
        elif bench == "pope":
            scores["exist"] = (det["accuracy_mean"], n)
        elif bench == "textvqa":
            scores["read"] = (det["accuracy"], n)
        elif bench == "sqa":
            scores["mc"] = (det["accuracy"], n)
        flops += s["llm_prefill_tflops_mean"] * n
        tokens += s["llm_visual_tokens_mean"] * n
        n_all += n
    return scores, flops / n_all, tokens / n_all


def table(rows, full_tokens):
    head = ["method", "visual tokens (LLM mean)", "LLM prefill GFLOPs"] + [TYPE_TITLES[t] for t in TYPES] + ["overall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, scores, flops, tokens in rows:
        total = sum(n for _, n in scores.values())
        overall = sum(acc * n for acc, n in scores.values()) / total
        cells = [label, f"{tokens:.1f} ({tokens / full_tokens * 100:.0f} %)", f"{flops * 1e3:.3f}"]
        cells += [f"{scores[t][0]:.1f}" if t in scores else "—" for t in TYPES]
        cells.append(f"**{overall:.1f}**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ficoco", required=True, help="the ficoco binary")
    ap.add_argument("--model", required=True, help="model directory (assets/minillava)")
    ap.add_argument("--data", required=True, help="dataset directory from make_dataset.py (uses test/ and images/test)")
    ap.add_argument("--out", required=True, help="study directory: runs/<bench>/<method>-<keep>, report/, study.md")
    ap.add_argument("--keeps", default="72,36,16", help="visual-token budgets (of 144: 50, 25, 11 %%)")
    ap.add_argument("--methods", help="comma-separated methods (default: every method `ficoco methods` lists)")
    ap.add_argument("--compute", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="evaluations run at once (one thread each)")
    ap.add_argument("--docs", help="also copy study.md and the plots into this directory")
    a = ap.parse_args()
    keeps = [int(k) for k in a.keeps.split(",")]
    methods = a.methods.split(",") if a.methods else methods_of(a.ficoco)
    configs = [("none", 0)] + [(m, k) for m in methods if m != "none" for k in keeps]
    jobs = [(bench, m, k) for m, k in configs for bench in BENCHES]
    failed = {}
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        futures = {pool.submit(eval_one, a, *job): job for job in jobs}
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            bench, m, k = futures[fut]
            out, status = fut.result()
            print(f"[{i}/{len(jobs)}] {bench} {run_name(m, k)}: {status}", flush=True)
            if status.startswith("FAILED"):
                failed[(m, k)] = status
    rows = []
    for m, k in configs:
        if (m, k) in failed:
            continue
        dirs = {b: os.path.join(a.out, "runs", b, run_name(m, k)) for b in BENCHES}
        scores, flops, tokens = type_scores(dirs)
        rows.append((run_name(m, k), scores, flops, tokens))
    full_tokens = rows[0][3]
    report = os.path.join(a.out, "report")
    subprocess.run([a.ficoco, "eval-report", "--out", report]
                   + [os.path.join(a.out, "runs", b, run_name(m, k)) for m, k in configs if (m, k) not in failed
                      for b in BENCHES], check=True, capture_output=True)
    text = ["# MiniLLaVA: accuracy per question type against LLM prefill FLOPs", "",
            f"Model `{a.model}`, test split `{a.data}/test`, `--compute {a.compute}`, budgets {a.keeps} of "
            f"{full_tokens:.0f} visual tokens. Accuracy in %; GFLOPs = mean measured LLM prefill per question.", "",
            table(rows, full_tokens), ""]
    if failed:
        text += ["Configurations that could not run:", ""] + [f"- {run_name(m, k)}: {s}" for (m, k), s in failed.items()] + [""]
    with open(os.path.join(a.out, "study.md"), "w") as f:
        f.write("\n".join(text))
    print("\n".join(text))
    if a.docs:
        os.makedirs(a.docs, exist_ok=True)
        shutil.copy(os.path.join(a.out, "study.md"), a.docs)
        for name in os.listdir(report):
            if name.endswith(".png"):
                shutil.copy(os.path.join(report, name), a.docs)
    return 1 if failed and len(failed) == len(configs) else 0


if __name__ == "__main__":
    sys.exit(main())
