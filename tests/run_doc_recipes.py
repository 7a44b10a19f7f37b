#!/usr/bin/python3
"""Runs the recipes of a Markdown page (docs/python.md) in document order.

    run_doc_recipes.py PAGE WORKDIR [--skip NAME]...

Every fenced block whose first line is `# recipe: NAME` is a recipe: a ```python block
runs in one namespace shared by all of them (a later recipe uses what an earlier one
defined), a ```sh block runs with `bash -e` (`elag` must be on PATH), any other block
(```yaml) is written to the file NAME. Everything runs in WORKDIR. --skip leaves a recipe
out (a missing optional package). Exit 0 when every recipe ran; 1 with the recipe's name
and the error otherwise; 2 when the page has no recipes or names one twice.
"""
import os
import re
import subprocess
import sys
import traceback

FENCE = re.compile(r"^```(\w*)\n(# recipe: (\S+)\n.*?)^```$", re.M | re.S)


def main():
    args = sys.argv[1:]
    skip = set()
    while "--skip" in args:
        i = args.index("--skip")
        skip.add(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    page, workdir = os.path.abspath(args[0]), args[1]
    with open(page, encoding="utf-8") as f:
        recipes = [(m.group(1), m.group(3), m.group(2)) for m in FENCE.finditer(f.read())]
    names = [name for _, name, _ in recipes]
    if not recipes or len(set(names)) != len(names) or not skip <= set(names):
        print(f"{page}: recipes {names}, skip {sorted(skip)}", file=sys.stderr)
        return 2
    os.chdir(workdir)
    namespace = {"__name__": "__recipe__"}
    for lang, name, body in recipes:
        if name in skip:
            print(f"recipe {name}: skipped")
            continue
        print(f"recipe {name} ({lang or 'file'})", flush=True)
        try:
            if lang == "python":
                exec(compile(body, f"{page}:{name}", "exec"), namespace)
            elif lang == "sh":
                subprocess.run(["bash", "-e", "-c", body], check=True)
            else:
                with open(name, "w", encoding="utf-8") as f:
                    f.write(body)
        except Exception:  # the recipe's own failure, whatever it is
            traceback.print_exc()
            print(f"recipe {name} failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
