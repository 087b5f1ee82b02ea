#!/usr/bin/python3
"""The SDK's compatibility promise, checked with libabigail's abidiff.

Builds tests/sdk/abi/probe.cpp against the current SDK headers and against
each frozen minor of the current major (tests/sdk/compat/sdk-M.k), then:
- against every earlier minor, the current SDK may only add: functions, a
  virtual at the end of an interface, an enumerator; anything else (a struct
  of another size or layout, a removed function, a virtual inserted before
  others or moved, another base) breaks plugins built for that minor;
- against a frozen copy of its own version it must be identical (a change
  needs a new minor, or a new major if it breaks the promise); every minor
  of the major, the current one included, must be frozen.
A change of major starts over: older majors are not compared.

usage: check.py CXX SDK_INCLUDE_DIR FROZEN_DIR WORK_DIR
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# abidiff lines that break a plugin built against the older minor.
INCOMPATIBLE = [
    (re.compile(r"\b([1-9]\d*) Removed"), "something was removed"),
    (re.compile(r"type size changed"), "a type changed size"),
    (re.compile(r"data member"), "a struct's data members changed"),
    (re.compile(r"member function deletion"), "a member function was removed"),
    (re.compile(r"vtable offset"), "a virtual function moved in its vtable"),
    (re.compile(r"base class"), "a base class changed"),
    (re.compile(r"enumerator (deletion|change)"), "an enumerator was removed or renumbered"),
    (re.compile(r"type name changed"), "a type was replaced by another"),
    (re.compile(r"parameter \d+ of type .* was (added|removed)"), "a parameter was added or removed"),
]
INSERTION = re.compile(r"(\d+) member function insertions?:")
VOFFSET = re.compile(r"virtual at voffset (\d+)/(\d+)")


def version(include_dir):
    text = open(os.path.join(include_dir, "switchboard", "abi.hpp")).read()
    major = int(re.search(r"#define SWITCHBOARD_SDK_VERSION_MAJOR (\d+)u", text).group(1))
    minor = int(re.search(r"#define SWITCHBOARD_SDK_VERSION_MINOR (\d+)u", text).group(1))
    return major, minor


def build(cxx, include_dir, out):
    subprocess.run([cxx, "-std=c++20", "-g", "-O0", "-shared", "-fPIC", "-fvisibility=hidden", "-I", include_dir,
                    "-o", out, os.path.join(HERE, "probe.cpp")], check=True)
    return out


def breaking(report):
    """The lines of an abidiff report that break the promise, with why."""
    problems = []
    lines = report.splitlines()
    for i, line in enumerate(lines):
        for pattern, why in INCOMPATIBLE:
            if pattern.search(line):
                problems.append(f"{why}: {line.strip()}")
        m = INSERTION.search(line)
        if m:
            offsets = []
            for follow in lines[i + 1:i + 1 + int(m.group(1))]:
                v = VOFFSET.search(follow)
                if v:
                    offsets.append((int(v.group(1)), int(v.group(2)), follow.strip()))
            if offsets:
                last = offsets[0][1]
                mine = sorted(o for o, _, _ in offsets)
                if mine != list(range(last - len(mine) + 1, last + 1)):
                    problems.append("a virtual was inserted before existing ones (add at the end): " +
                                    "; ".join(text for _, _, text in offsets))
    return problems


def main(cxx, include_dir, frozen_dir, work):
    os.makedirs(work, exist_ok=True)
    major, minor = version(include_dir)
    current = build(cxx, include_dir, os.path.join(work, "probe-current.so"))
    failures = []
    compared = 0
    for k in range(0, minor + 1):
        frozen = os.path.join(frozen_dir, f"sdk-{major}.{k}", "include")
        if not os.path.isdir(frozen):
            # A minor is frozen in the commit that makes it: the rule "identical
            # to its frozen copy" then holds from its first commit on.
            failures.append(f"SDK {major}.{k} is not frozen in {frozen_dir}: copy sdk/include there as "
                            f"sdk-{major}.{k}/include in the commit that sets SWITCHBOARD_SDK_VERSION_MINOR "
                            f"(tests/sdk/compat/README.md)")
            continue
        if version(frozen) != (major, k):
            failures.append(f"{frozen} holds SDK {version(frozen)}, not {major}.{k}")
            continue
        old = build(cxx, frozen, os.path.join(work, f"probe-{major}.{k}.so"))
        run = subprocess.run(["abidiff", "--no-unreferenced-symbols", old, current], capture_output=True, text=True)
        report = run.stdout + run.stderr
        # Template instances (std::function of a default's lambda, ...) are
        # additions of no interest: keep the report readable.
        shown = "\n".join(line for line in report.splitlines()
                          if not re.match(r"\s*\[A\] '(function|method) .*(std::|__gnu_cxx::|operator)", line))
        compared += 1
        if run.returncode & 1:  # ABIDIFF_ERROR
            failures.append(f"abidiff failed on SDK {major}.{k}:\n{report}")
        elif k == minor:
            if run.returncode != 0:
                failures.append(f"SDK {major}.{minor} changed after it was frozen: keep the promise in a new minor "
                                f"(SWITCHBOARD_SDK_VERSION_MINOR) or break it in a new major. abidiff:\n{shown}")
        else:
            problems = breaking(report)
            if problems:
                failures.append(f"SDK {major}.{minor} breaks plugins built for SDK {major}.{k}; bump the major "
                                f"(SWITCHBOARD_SDK_VERSION_MAJOR) or follow the promise (docs/plugins.md):\n  " +
                                "\n  ".join(problems) + f"\nabidiff:\n{shown}")
            else:
                added = re.findall(r"^\s*\[A\] '(?:method|function) (.*switchboard::.*)'", shown, re.M)
                print(f"SDK {major}.{minor} only adds to SDK {major}.{k}:" + "".join(f"\n  + {a}" for a in added))
    if failures:
        print("\n\n".join(failures))
        return 1
    print(f"SDK {major}.{minor}: ABI kept against {compared} frozen minor(s) of major {major}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
