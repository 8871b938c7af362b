"""The CI examples (examples/ci/) stay runnable: every `teardown` command line in the GitHub
Actions workflow, the GitLab job and the README is checked, without running anything, against
the real click commands (the subcommand exists, each option exists and takes a value exactly
when it should); and each pipeline has what a nightly sweep needs (a schedule, the journal
cached across runs whatever the outcome, the reports kept even when the sweep fails)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from teardown.adapters.huawei.profile import profile_from_env
from teardown.adapters.huawei.provider import VAULT_ENV
from teardown.cli.main import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
README = EXAMPLES / "README.md"

_OPERATORS = {";", ";;", "&", "&&", "|", "||", "|&", "(", ")"}
_LEADING = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec", "command"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PINNED = re.compile(r"[\w.-]+/[\w./-]+@v\d+")


@dataclass(frozen=True)
class Invocation:
    where: str
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"


# -- reading the examples ---------------------------------------------------------------------


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a YAML mapping"
    return data


def github_triggers(workflow: Mapping[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads a bare `on:` key as the boolean true.
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict), "the workflow's `on:` is not a mapping of triggers"
    return triggers


def github_steps(workflow: Mapping[Any, Any]) -> list[dict[str, Any]]:
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict) and jobs, "the workflow has no jobs"
    steps: list[dict[str, Any]] = []
    for job in jobs.values():
        steps += job.get("steps", [])
    return steps


def gitlab_jobs(pipeline: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: job
        for name, job in pipeline.items()
        if isinstance(name, str) and isinstance(job, dict) and "script" in job
    }


def scripts() -> Iterator[tuple[str, str]]:
    """(where, shell text) of every `run:` step, `script:` item and README code block."""
    for n, step in enumerate(github_steps(load(GITHUB)), 1):
        if "run" in step:
            yield f"{GITHUB.name} step {step.get('name', n)!r}", str(step["run"])
    for name, job in gitlab_jobs(load(GITLAB)).items():
        for key in ("before_script", "script", "after_script"):
            items = job.get(key, [])
            for n, item in enumerate([items] if isinstance(items, str) else items, 1):
                yield f"{GITLAB.name} {name}.{key}[{n}]", str(item)
    block: list[str] | None = None
    for n, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            if block is None:
                block, start = [], n + 1
            else:
                yield f"{README.name} line {start}", "\n".join(block)
                block = None
        elif block is not None:
            block.append(line)


def shell_commands(text: str) -> Iterator[list[str]]:
    """The simple commands of a shell script, each as its words (redirections and leading
    keywords and assignments dropped). Enough for the examples' scripts, not a shell parser."""
    text = re.sub(r"\\\n", " ", text)
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        tokens = list(lexer)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in _OPERATORS:
                yield from _simple(words)
                words = []
            elif set(token) <= set("<>&") and token:
                if words and words[-1].isdigit():
                    words.pop()  # the descriptor of `2>`
                i += 1  # the redirection's target
            else:
                words.append(token)
            i += 1
        yield from _simple(words)


def _simple(words: list[str]) -> Iterator[list[str]]:
    while words and (words[0] in _LEADING or _ASSIGNMENT.match(words[0])):
        words = words[1:]
    if words:
        yield words


def invocations() -> list[Invocation]:
    found = []
    for where, text in scripts():
        for words in shell_commands(text):
            if words[0] == "teardown":
                found.append(Invocation(where, tuple(words)))
    return found


# -- checking a command line against the click commands ---------------------------------------


def check(group: click.Group, argv: tuple[str, ...]) -> list[str]:
    """What is wrong with ``argv`` (``teardown ...``) as a command line of ``group``: an unknown
    subcommand or option, an option given a value it does not take (or missing one), a value a
    choice or number option refuses, an unexpected argument. Runs nothing."""
    assert argv and argv[0] == "teardown", argv
    command: click.Command = group
    name = "teardown"
    args = list(argv[1:])
    while True:
        positional, problems = _options(command, name, args)
        if problems:
            return problems
        if not isinstance(command, click.Group):
            return _arguments(command, name, positional)
        if not positional:
            return []
        sub = positional[0]
        if sub not in command.commands:
            return [
                f"`{name} {sub}` is not a command of teardown.cli.main.cli "
                f"(it has: {', '.join(sorted(command.commands))})"
            ]
        command = command.commands[sub]
        name = f"{name} {sub}"
        args = positional[1:]


def _options(command: click.Command, name: str, args: list[str]) -> tuple[list[str], list[str]]:
    """The positional words of ``args`` (for a group: from its subcommand on) and the problems
    with its options."""
    ctx = click.Context(command, info_name=name)
    by_opt: dict[str, click.Option] = {}
    for known in command.get_params(ctx):
        if isinstance(known, click.Option):
            for opt in (*known.opts, *known.secondary_opts):
                by_opt[opt] = known
    positional: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            positional += args[i:]
            break
        if not word.startswith("-") or word == "-":
            positional.append(word)
            if isinstance(command, click.Group):
                positional += args[i:]
                break
            continue
        opt, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        param = by_opt.get(opt)
        if param is None:
            listed = ", ".join(sorted(o for o in by_opt if o.startswith("--")))
            problems.append(f"`{name}` has no option {opt} (it has: {listed})")
            continue
        takes_value = not (param.is_flag or param.count)
        if not takes_value:
            if eq:
                problems.append(f"`{name} {opt}` is a flag: it takes no value ({word!r})")
            continue
        if eq:
            values = [inline]
        else:
            values = args[i : i + param.nargs]
            i += param.nargs
        if len(values) < param.nargs or any(v.startswith("--") and v in by_opt for v in values):
            problems.append(f"`{name} {opt}` takes {param.nargs} value(s): got {values}")
            continue
        problems += _value_problems(ctx, name, opt, param, values)
    return positional, problems


def _value_problems(
    ctx: click.Context, name: str, opt: str, param: click.Option, values: list[str]
) -> list[str]:
    """A choice or a number is checked; other values (paths, durations, globs, ${env:NAME}, a
    shell expansion) are left to the command, which may look at files or the environment."""
    kind = param.type
    if not isinstance(kind, click.Choice | click.types.IntParamType | click.types.FloatParamType):
        return []
    problems = []
    for value in values:
        if "$" in value:
            continue
        try:
            kind(value, param, ctx)  # ParamType.__call__: convert
        except click.BadParameter as e:
            problems.append(f"`{name} {opt} {value}`: {e.format_message()}")
    return problems


def _arguments(command: click.Command, name: str, positional: list[str]) -> list[str]:
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if any(a.nargs < 0 for a in arguments):
        return []
    expected = sum(a.nargs for a in arguments)
    required = sum(a.nargs for a in arguments if a.required)
    if len(positional) > expected:
        return [f"`{name}` takes {expected} argument(s): got {positional}"]
    if len(positional) < required:
        return [f"`{name}` needs {required} argument(s): got {positional}"]
    return []


def options_of(invocation: Invocation) -> dict[str, list[str]]:
    """``--opt`` -> its values ('' for a flag), for the simple lines of the examples."""
    out: dict[str, list[str]] = {}
    words = list(invocation.argv)
    for i, word in enumerate(words):
        if word.startswith("--"):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            value = "" if nxt.startswith("-") else nxt
            out.setdefault(word, []).append(value)
    return out


# -- the tests ---------------------------------------------------------------------------------

INVOCATIONS = invocations()


def test_the_examples_run_teardown_sweep() -> None:
    for path in (GITHUB, GITLAB):
        sweeps = [i for i in INVOCATIONS if i.where.startswith(path.name) and "sweep" in i.argv]
        assert sweeps, f"{path.name}: no `teardown sweep` line found"
        acting = [i for i in sweeps if "--yes" in i.argv]
        assert acting, f"{path.name}: no `teardown sweep ... --yes`: the sweep never acts"
        assert any("--yes" not in i.argv for i in sweeps), f"{path.name}: no dry run"
        for invocation in acting:
            options = options_of(invocation)
            assert {"--tag", "--older-than", "--stack-glob", "--notify"} <= set(options), invocation
            # The webhook URL is a secret: teardown resolves it, the shell never sees it.
            assert options["--notify"] == ["${env:SWEEP_WEBHOOK}"], invocation


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=str)
def test_each_teardown_command_line_is_one_the_cli_accepts(invocation: Invocation) -> None:
    problems = check(cli, invocation.argv)
    assert not problems, f"{invocation}\n  " + "\n  ".join(problems)


def test_the_checker_finds_what_is_wrong() -> None:
    """The checker itself, against the commands that exist now (``run``)."""
    assert check(cli, ("teardown", "--version")) == []
    assert check(cli, ("teardown", "run", "--yes", "--tag", "env=ci", "--json")) == []
    assert check(cli, ("teardown", "run", "--tag=env=ci")) == []
    [missing] = check(cli, ("teardown", "nosuch", "--yes"))
    assert "`teardown nosuch` is not a command" in missing
    [unknown] = check(cli, ("teardown", "run", "--frobnicate"))
    assert "has no option --frobnicate" in unknown
    [flag] = check(cli, ("teardown", "run", "--yes=1"))
    assert "is a flag" in flag
    [no_value] = check(cli, ("teardown", "run", "--tag"))
    assert "takes 1 value" in no_value
    [eaten] = check(cli, ("teardown", "run", "--tag", "--yes"))
    assert "takes 1 value" in eaten
    [extra] = check(cli, ("teardown", "run", "stray"))
    assert "argument" in extra
    words = list(
        shell_commands('if [ "$X" = 1 ]; then A=1 teardown run \\\n  --yes 2>/dev/null; fi')
    )
    assert ["teardown", "run", "--yes"] in words


def test_the_github_workflow_is_a_nightly_sweep_that_keeps_its_journal() -> None:
    workflow = load(GITHUB)
    triggers = github_triggers(workflow)
    assert "schedule" in triggers and "workflow_dispatch" in triggers, triggers
    crons = [entry["cron"] for entry in triggers["schedule"]]
    assert crons and all(len(c.split()) == 5 for c in crons), crons
    dry_run = triggers["workflow_dispatch"]["inputs"]["dry_run"]
    assert dry_run["type"] == "boolean"

    [job] = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    steps = github_steps(workflow)
    uses = [str(s["uses"]) for s in steps if "uses" in s]
    assert all(_PINNED.fullmatch(u) for u in uses), f"actions not pinned to a major: {uses}"
    names = {u.split("@")[0] for u in uses}
    assert {"actions/checkout", "actions/setup-python", "actions/upload-artifact"} <= names
    [python] = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert str(python["with"]["python-version"]) == "3.11"
    assert any("pip install ." in str(s.get("run", "")).splitlines() for s in steps)

    def index(predicate: Any) -> list[int]:
        return [n for n, s in enumerate(steps) if predicate(s)]

    [sweep] = index(lambda s: "teardown sweep" in str(s.get("run", "")))
    step = steps[sweep]
    assert "inputs.dry_run" in str(step["env"].values()), "the dry_run input is not used"

    # The journal: restored before the sweep (newest of this branch), saved after it, always.
    caches = index(lambda s: str(s.get("uses", "")).startswith("actions/cache"))
    assert caches, "the journal (.teardown/) is not cached"
    for n in caches:
        paths = str(steps[n]["with"]["path"]).split()
        assert any(p.rstrip("/") == ".teardown" for p in paths), steps[n]
    restores = [n for n in caches if "/save@" not in steps[n]["uses"]]
    assert restores and min(restores) < sweep, "the journal is not restored before the sweep"
    restore = steps[min(restores)]["with"]
    key = str(restore["key"])
    assert "github.ref_name" in key or "github.ref" in key, f"cache key not per branch: {key}"
    assert "github.run_id" in key, f"cache key not per run: {key}"
    prefixes = [p.strip() for p in str(restore["restore-keys"]).splitlines() if p.strip()]
    assert prefixes and all(key.startswith(p) for p in prefixes), (key, prefixes)
    # actions/cache's own post step saves only when the job succeeds: a sweep that stopped
    # half way would lose the journal its resume needs.
    saves = [n for n in caches if steps[n]["uses"].startswith("actions/cache/save@")]
    assert saves, "the journal is not saved by an actions/cache/save step"
    for n in saves:
        assert n > sweep and steps[n].get("if") == "always()", (
            "the journal must be saved after the sweep even when it fails (if: always())"
        )
        assert steps[n]["with"]["key"] == key

    # The reports: in the job summary and as an artifact, whatever the sweep's outcome.
    [summary] = index(lambda s: "GITHUB_STEP_SUMMARY" in str(s.get("run", "")))
    assert summary > sweep and steps[summary].get("if") == "always()"
    assert "summary.md" in steps[summary]["run"]
    [upload] = index(lambda s: str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload > sweep and steps[upload].get("if") == "always()"
    uploaded = str(steps[upload]["with"]["path"]).split()
    assert ".teardown/sweeps/" in uploaded and ".teardown/runs/" in uploaded, uploaded


def test_the_github_sweep_step_gets_the_credentials_teardown_reads_from_secrets() -> None:
    [step] = [s for s in github_steps(load(GITHUB)) if "teardown sweep" in str(s.get("run", ""))]
    env: dict[str, str] = {str(k): str(v) for k, v in step["env"].items()}
    # The names are the ones teardown reads: a profile comes out of them.
    assert profile_from_env(dict.fromkeys(env, "x")) is not None
    assert VAULT_ENV in env
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "SWEEP_WEBHOOK"):
        assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", env.get(name, "")), (name, env.get(name))
    refs = re.findall(r"\$\{env:(\w+)\}", step["run"])
    assert refs and all(ref in env for ref in refs), refs


def test_the_gitlab_job_is_a_scheduled_sweep_that_keeps_its_journal() -> None:
    jobs = gitlab_jobs(load(GITLAB))
    [(name, job)] = [(n, j) for n, j in jobs.items() if "teardown sweep" in str(j["script"])]
    assert str(job["image"]) == "python:3.11"
    conditions = [str(rule.get("if", "")) for rule in job["rules"]]
    assert any('$CI_PIPELINE_SOURCE == "schedule"' in c for c in conditions), conditions
    assert any('$CI_PIPELINE_SOURCE == "web"' in c for c in conditions), conditions
    assert "pip install ." in job["before_script"]

    cache = job["cache"]
    assert any(str(p).rstrip("/") == ".teardown" for p in cache["paths"]), cache
    assert "$CI_COMMIT_REF_SLUG" in str(cache["key"]) or "$CI_COMMIT_REF_NAME" in str(
        cache["key"]
    ), f"cache key not per branch: {cache['key']}"
    assert cache.get("when") == "always", "the journal must be cached even when the sweep fails"

    artifacts = job["artifacts"]
    assert artifacts.get("when") == "always", f"{name}: reports not kept when the sweep fails"
    assert {".teardown/sweeps/", ".teardown/runs/"} <= set(artifacts["paths"]), artifacts
