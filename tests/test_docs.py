"""The README and the guides stay true to the code.

- Every ``mlfer ...`` command in a fenced code block of README.md or docs/*.md (backslash
  continuations joined, a leading ``$ `` dropped, ``torchrun ... -m mlfer ...`` included) is
  parsed by ``mlfer.cli.build_parser()``. Synopses (``[--option ...]``) and elided commands
  (``...``), and commands in inline code, are checked for their command and option names.
- The commands that run offline in seconds are run, and where a ``$ mlfer ...`` line is
  followed by its output in the same block, the output must match.
- docs/cli.md equals what scripts/make_cli_docs.py renders; links resolve; the reproduction
  tables hold the paper's numbers; the documented prediction columns and checkpoint files
  are the real ones; README and .ci/run run the same test command.

Each command that is run runs in a fresh folder beside a link ``shared`` to the real
``../shared`` folder, so ``../shared/data/...`` paths work as written, and relative outputs
(``--out runs/x``) land in that folder.

README.md's commands run exactly as written, nothing substituted: a new user types them in
order, so every file one reads must be in the repository, in ``../shared/data``, or written by
an earlier README command (a test checks this from the commands alone). Their folder holds
what the earlier commands write: the quick model (trained once by the module fixture with
the README's own ``mlfer train ... --out quick-model``), and in place of ``mlfer demo``'s
minutes, its ``face.png`` drawn by the demo's own function and its two model folders as
links to the quick model.

The guides in docs/ use placeholders:

- ``--checkpoint X`` (any X) is the README's quick model: the module fixture trains it by
  running the README's ``mlfer train ... --out quick-model`` command as written;
- an image or video given to ``predict`` or ``explain`` that does not exist there
  (``photos/``, ``party.jpg``, ``/data/RAF-ML/...``) is ``../shared/data/faces/single_face.jpg``;
- an absolute ``--out``, ``--annotate`` or ``--cache`` moves into the folder.

Not run (only parsed): commands started through torchrun, ``mlfer demo`` (minutes;
tests/experiments/test_demo.py runs a small one), ``mlfer export`` (about 20 s; tests/inference/test_export.py),
commands whose dataset or input lies outside ``../shared`` (the licensed datasets),
``--device cuda``, and training commands that do not set ``train.epochs`` to 2 or fewer.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlfer.cli import build_parser
from mlfer.core.expressions import EXPRESSIONS
from mlfer.inference.table import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SAMPLE_PHOTO = "../shared/data/faces/single_face.jpg"
QUICK_MODEL = "quick-model"
#: Commands that are never run here, and why.
NOT_RUN = {
    "demo": "takes minutes (tests/experiments/test_demo.py runs a small demo)",
    "export": "takes about 20 s (tests/inference/test_export.py exports small models)",
}
TRAINING = {"train", "ablate", "pretrain-backbone"}
#: Metric order of the paper's tables and of docs/reproduce.md.
PAPER_METRICS = ["HL↓", "Cov↓", "OE↓", "RL↓", "AP↑", "Micro-F1↑", "Macro-F1↑", "Micro-AUC↑", "Macro-AUC↑"]
ABLATION_ROWS = {
    "Baseline": "baseline",
    "SVML-GCN": "svml-gcn",
    "SML-RGCN": "sml-rgcn",
    "VML-RGCN": "vml-rgcn",
    "SVML-RGCN": "svml-rgcn",
}


def load_script() -> types.ModuleType:
    """scripts/make_cli_docs.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_cli_docs", ROOT / "scripts" / "make_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLI_DOCS = load_script()


@dataclass(frozen=True)
class DocCommand:
    """One ``mlfer`` command found in a document.

    Args:
        doc: the document, relative to the project root.
        line: 1-based line where the command starts.
        argv: the arguments after ``mlfer``.
        output: the lines shown after a ``$ mlfer ...`` command in its block.
        launcher: ``"torchrun"`` or ``"python -m"`` when started as a module, else ``None``.
        inline: found in inline code rather than a fenced block.
    """

    doc: str
    line: int
    argv: tuple[str, ...]
    output: tuple[str, ...] = ()
    launcher: str | None = None
    inline: bool = False

    @property
    def name(self) -> str:
        return self.argv[0]

    @property
    def synopsis(self) -> bool:
        """A usage synopsis: optional parts in brackets."""
        return any(token.startswith("[") for token in self.argv)

    @property
    def partial(self) -> bool:
        """Not a complete command line: a synopsis, an elision (``...``) or inline prose."""
        return self.inline or self.synopsis or "..." in self.argv

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: mlfer {shlex.join(self.argv)}"


def logical_lines(block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations and indented synopsis continuations (``    [--x]``)."""
    joined: list[tuple[int, str]] = []
    continues = False
    for number, text in block:
        if joined and (continues or (text.startswith((" ", "\t")) and text.lstrip().startswith("["))):
            joined[-1] = (joined[-1][0], joined[-1][1] + " " + text.strip())
        else:
            joined.append((number, text))
        continues = text.rstrip().endswith("\\")
        if continues:
            joined[-1] = (joined[-1][0], joined[-1][1].rstrip()[:-1])
    return joined


def command_of(text: str) -> tuple[tuple[str, ...], str | None] | None:
    """The arguments after ``mlfer`` and the launcher, or None when the line is no mlfer command."""
    text = text.strip().removeprefix("$ ")
    if text.startswith("mlfer "):
        rest, launcher = text[len("mlfer ") :], None
    elif match := re.search(r"(?:^|\s)-m mlfer\s", text):
        rest, launcher = text[match.end() :], "torchrun" if text.startswith("torchrun") else "python -m"
    else:
        return None
    argv = tuple(shlex.split(rest, comments=True))
    if not argv or not re.fullmatch(r"-{0,2}[a-z][a-z0-9-]*", argv[0]):
        return None  # prose such as "mlfer evaluate, mlfer predict" or an error message "mlfer train: ..."
    return argv, launcher


def fenced_commands(doc: str, text: str) -> list[DocCommand]:
    """The mlfer commands of the fenced code blocks of one document."""
    commands: list[DocCommand] = []
    block: list[tuple[int, str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            if block is not None:
                commands += block_commands(doc, block)
            block = [] if block is None else None
        elif block is not None:
            block.append((number, line))
    return commands


def block_commands(doc: str, block: list[tuple[int, str]]) -> list[DocCommand]:
    """The commands of one block, each ``$ mlfer`` one with the lines printed after it."""
    found: list[DocCommand] = []
    output: list[str] | None = None
    for number, text in logical_lines(block):
        parsed = command_of(text)
        if parsed is not None:
            if output is not None:
                found[-1] = close_output(found[-1], output)
            found.append(DocCommand(doc, number, parsed[0], launcher=parsed[1]))
            output = [] if text.lstrip().startswith("$ ") else None
        elif output is not None:
            if text.lstrip().startswith("$ "):
                found[-1], output = close_output(found[-1], output), None
            else:
                output.append(text.rstrip())
    if output is not None:
        found[-1] = close_output(found[-1], output)
    return found


def close_output(command: DocCommand, output: list[str]) -> DocCommand:
    while output and not output[-1]:
        output.pop()
    return DocCommand(command.doc, command.line, command.argv, tuple(output), command.launcher)


def inline_commands(doc: str, text: str) -> list[DocCommand]:
    """``mlfer ...`` spans of inline code outside fenced blocks."""
    prose = re.sub(r"^\s*```.*?^\s*```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.M | re.S)
    commands = []
    for match in re.finditer(r"`(mlfer [^`]+)`", prose):
        parsed = command_of(" ".join(match.group(1).split()))
        if parsed is not None:
            line = prose.count("\n", 0, match.start()) + 1
            commands.append(DocCommand(doc, line, parsed[0], inline=True))
    return commands


def documented_commands() -> list[DocCommand]:
    commands = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        doc = str(path.relative_to(ROOT))
        commands += fenced_commands(doc, text) + inline_commands(doc, text)
    return commands


COMMANDS = documented_commands()


def subparser(name: str) -> argparse.ArgumentParser | None:
    entry = CLI_DOCS.subcommands(build_parser()).get(name)
    return entry[1] if entry else None


def parse(command: DocCommand, capsys: pytest.CaptureFixture) -> argparse.Namespace:
    """Parse a complete command, failing with argparse's message."""
    try:
        return build_parser().parse_args(list(command.argv))
    except SystemExit as exit_:
        if exit_.code == 0:  # --help
            return argparse.Namespace()
        pytest.fail(f"{command}\n  does not parse: {capsys.readouterr().err.strip()}")


def is_local(spec_or_path: str | Path | None) -> bool:
    """True for synthetic data and files under ../shared (the data beside the project)."""
    if spec_or_path is None:
        return True
    text = str(spec_or_path)
    kind, colon, target = text.partition(":")
    if kind.split("?")[0] == "synthetic":
        return True
    return (target if colon else text).split("?")[0].startswith("../shared/")


def training_epochs(args: argparse.Namespace) -> int:
    """``train.epochs`` as set by ``--set`` (80, the paper's, otherwise)."""
    epochs = 80
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key.strip() == "train.epochs":
            epochs = int(value)
    return epochs


def why_not_run(command: DocCommand) -> str | None:
    """None for a command the tests run, else the reason it is only parsed."""
    if command.partial:
        return "not a complete command"
    if command.launcher is not None:
        return f"started through {command.launcher}"
    if command.name in NOT_RUN:
        return NOT_RUN[command.name]
    try:
        args = build_parser().parse_args(list(command.argv))
    except SystemExit:
        return "does not parse (test_documented_command_parses fails)"
    if getattr(args, "device", "cpu") not in ("cpu", "auto"):
        return "needs a GPU"
    for name in ("dataset", "prototypes", "labels", "src"):
        if not is_local(getattr(args, name, None)):
            return f"its {name} lies outside ../shared"
    if command.name in TRAINING and training_epochs(args) > 2:
        return "trains for more than 2 epochs"
    return None


RUNNABLE = [command for command in COMMANDS if why_not_run(command) is None]


def is_quick_model_command(command: DocCommand) -> bool:
    return command.doc == "README.md" and command.name == "train" and command.argv[-2:] == ("--out", QUICK_MODEL)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A folder beside a link ``shared`` to ../shared, holding the README's quick model."""
    root = tmp_path_factory.mktemp("docs")
    (root / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    folder = root / "readme"
    folder.mkdir()
    (quick,) = [command for command in COMMANDS if is_quick_model_command(command)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFER_CACHE", str(root / "cache"))
        patch.chdir(folder)
        args = build_parser().parse_args(list(quick.argv))
        assert args.handler(args) == 0
    return folder


def test_commands_are_found():
    """The extractor sees the documents' commands, so the tests below cannot pass by finding none."""
    readme = {command.name for command in COMMANDS if command.doc == "README.md" and not command.inline}
    assert {"demo", "predict", "explain"} <= readme
    reproduce = {command.name for command in COMMANDS if command.doc == "docs/reproduce.md"}
    assert {"align", "pretrain-backbone", "ablate", "explain", "evaluate", "graph"} <= reproduce
    assert {"train", "predict", "explain", "graph"} <= {command.name for command in RUNNABLE}
    sweeps = [command for command in COMMANDS if command.name == "ablate" and "--sweep" in command.argv]
    assert {"t1", "t2", "layers"} <= {
        command.argv[i + 1] for command in sweeps for i, token in enumerate(command.argv) if token == "--sweep"
    }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: f"{command.doc}:{command.line}")
def test_documented_command_parses(command: DocCommand, capsys: pytest.CaptureFixture):
    """Complete commands parse; synopses, elided and inline ones name real commands and options."""
    parser = subparser(command.name)
    if not command.partial:
        parse(command, capsys)
        return
    assert parser is not None, f"{command}\n  names no mlfer command"
    known = set(parser._option_string_actions)
    options = [token for token in command.argv if token.lstrip("[").startswith("-")]
    named = {re.sub(r"[\[\]]", "", token).split("=")[0] for token in options}
    unknown = sorted(named - known)
    assert not unknown, f"{command}\n  unknown option(s) {unknown} of mlfer {command.name}"
    if command.synopsis:
        required = {a.option_strings[-1] for a in parser._actions if a.required and a.option_strings}
        assert required <= named, f"{command}\n  leaves out required option(s) {sorted(required - named)}"


def substitute(args: argparse.Namespace, folder: Path, model: Path) -> argparse.Namespace:
    """Apply the placeholder convention of the module docstring."""
    if isinstance(getattr(args, "checkpoint", None), list):
        args.checkpoint = [model] * len(args.checkpoint)
    elif getattr(args, "checkpoint", None) is not None:
        args.checkpoint = model
    if hasattr(args, "inputs"):
        args.inputs = list(dict.fromkeys(i if (folder / i).exists() else SAMPLE_PHOTO for i in args.inputs))
    if hasattr(args, "image") and not (folder / args.image).exists():
        args.image = Path(SAMPLE_PHOTO)
    for name in ("out", "annotate", "cache"):
        value = getattr(args, name, None)
        if value is not None and Path(value).is_absolute():
            setattr(args, name, folder / Path(value).name)
    return args


#: Arguments through which commands read files and folders, and through which they write them.
READ_ARGUMENTS = ("checkpoint", "inputs", "image", "dataset", "prototypes", "labels", "src")
WRITE_ARGUMENTS = ("out", "annotate")


def readme_commands() -> list[DocCommand]:
    """README's complete commands, in the order a reader meets them."""
    return [command for command in COMMANDS if command.doc == "README.md" and not command.partial]


def argument_paths(args: argparse.Namespace, names: tuple[str, ...]) -> list[Path]:
    """The paths given to the arguments ``names`` (dataset specs reduced to their target; synthetic
    data and the packaged model, given by no path, read no file)."""
    paths = []
    for name in names:
        value = getattr(args, name, None)
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            text = str(item)
            if name in ("dataset", "prototypes", "labels"):
                kind, colon, target = text.partition(":")
                if kind.split("?")[0] == "synthetic":
                    continue
                text = (target if colon else text).split("?")[0]
            paths.append(Path(text))
    return paths


def written_by(command: DocCommand, args: argparse.Namespace) -> set[Path]:
    """What a command writes: its ``--out`` and ``--annotate``, and for ``mlfer demo`` the files
    and model folders in its ``--out`` (the tiny demo of tests/experiments/test_demo.py checks
    that they are written)."""
    from mlfer.experiments.demo import DEMO_OUTPUTS

    written = set(argument_paths(args, WRITE_ARGUMENTS))
    if command.name == "demo":
        written |= {Path(args.out) / name for name in DEMO_OUTPUTS}
    return written


def ignored_at_the_root() -> set[str]:
    """The root-level names .gitignore keeps out of the repository (``/mlfer-demo/``, ``/faces.csv``)."""
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    return {line.strip().strip("/") for line in lines if line.startswith("/")}


def test_readme_commands_read_only_what_a_new_user_has():
    """Every file a README command reads is in the repository, in ../shared/data, or written by an
    earlier README command: a fresh clone runs them in order as written (``face.png``, which no
    command wrote, was missed when the runner substituted a sample photo for it)."""
    ignored, has_shared = ignored_at_the_root(), (ROOT.parent / "shared" / "data").is_dir()
    written: set[Path] = set()
    missing = []
    for command in readme_commands():
        args = build_parser().parse_args(list(command.argv))
        for path in argument_paths(args, READ_ARGUMENTS):
            shared = path.parts[:3] == ("..", "shared", "data")
            in_repo = not shared and path.parts[0] not in ignored and (ROOT / path).exists()
            if not (in_repo or (shared and ((ROOT / path).exists() or not has_shared)) or path in written):
                missing.append(f"{command}\n  reads {path}")
        written |= written_by(command, args)
    assert not missing, "\n".join(missing)
    assert Path("mlfer-demo/face.png") in written  # the demo's outputs are seen, so the check can pass for them


def write_earlier_readme_outputs(command: DocCommand, folder: Path, model: Path) -> None:
    """Put into ``folder`` what the README commands before ``command`` write: a link to the quick
    model, and for ``mlfer demo`` (minutes) its face, drawn by the demo's own function, and its
    model folders as links to the quick model."""
    from mlfer.experiments.demo import DEMO_MODELS, save_explain_face
    from mlfer.experiments.settings import DemoSettings

    for earlier in readme_commands():
        if earlier.line >= command.line:
            break
        args = build_parser().parse_args(list(earlier.argv))
        if is_quick_model_command(earlier):
            (folder / QUICK_MODEL).symlink_to(model, target_is_directory=True)
        elif earlier.name == "demo":
            save_explain_face(DemoSettings(size=args.size, seed=args.seed), folder / args.out / "face.png")
            for name in DEMO_MODELS:
                (folder / args.out / name).symlink_to(model, target_is_directory=True)


@pytest.mark.parametrize("command", RUNNABLE, ids=lambda command: f"{command.doc}:{command.line}")
def test_documented_command_runs(command: DocCommand, project: Path, tmp_path: Path, monkeypatch, capsys):
    """Run the command (README's as written, the guides' with the placeholders substituted); its shown
    output must match."""
    model = project / QUICK_MODEL
    if is_quick_model_command(command):  # the module fixture ran it
        assert (model / "model.safetensors").is_file() and (model / "config.yaml").is_file()
        return
    folder = project.parent / f"run-{command.doc.replace('/', '-')}-{command.line}"
    folder.mkdir()
    monkeypatch.setenv("MLFER_CACHE", str(project.parent / "cache"))
    monkeypatch.chdir(folder)
    if command.doc == "README.md":
        write_earlier_readme_outputs(command, folder, model)
        args = parse(command, capsys)
    else:
        args = substitute(parse(command, capsys), folder, model)
    capsys.readouterr()
    assert args.handler(args) == 0, str(command)
    printed = capsys.readouterr().out
    if command.output:
        assert [line.rstrip() for line in printed.rstrip("\n").splitlines()] == list(command.output), str(command)


def test_readme_python_example_runs(project: Path, monkeypatch, capsys):
    """The README's Python example, in the folder where its quick model was trained."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "mlfer.load" in block]
    monkeypatch.chdir(project)
    exec(compile(code, "README.md", "exec"), {})
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["face_id", "score", *EXPRESSIONS, "predicted"]


def test_cli_reference_is_up_to_date():
    expected = CLI_DOCS.render()
    actual = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md differs from the command line: run python scripts/make_cli_docs.py"


def test_cli_reference_lists_every_option():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, (_, parser) in CLI_DOCS.subcommands(build_parser()).items():
        section = text.split(f"## `mlfer {name}`\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if action.option_strings and "-h" not in action.option_strings:
                assert f"| `{action.option_strings[-1]}` |" in section, (name, action.option_strings)


def test_readme_and_ci_run_the_same_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    setup = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]"'
    assert f"```bash\n{setup}\nmlfer demo\n```" in readme
    assert "```bash\npython -m pytest -q\n```" in readme
    assert "python -m pytest -q" in ci
    assert any("install" in line and '-e ".[test' in line for line in ci)
    # the checks README names run in CI too
    for check in ("ruff check", "ruff format --check", "lint-imports", "mypy"):
        assert f"`{check}" in readme and any(line.startswith(check) for line in ci), check


def test_every_guide_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [path.name for path in DOCS[1:] if f"](docs/{path.name})" not in readme]
    assert not missing, f"README.md does not link {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^\s*```.*?^\s*```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.M):
        base, number = slug(heading), 0
        while (name := base if number == 0 else f"{base}-{number}") in found:
            number += 1
        found.add(name)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_links_resolve(doc: Path):
    """Relative links (and their #anchors) in README.md and docs/*.md point at what exists."""
    text = re.sub(r"^\s*```.*?^\s*```", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
    text = re.sub(r"`[^`]*`", "", text)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: broken links {broken}"


def section(doc: str, heading: str) -> str:
    text = (ROOT / doc).read_text(encoding="utf-8")
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_prediction_columns_are_documented():
    text = section("docs/formats.md", "## Prediction outputs")
    rows = re.findall(r"^\| `(\w+)` \|", text, flags=re.M)
    assert rows == list(COLUMNS)
    assert ",".join(COLUMNS) in text.splitlines()
    readme = section("README.md", "## Predict on your own photos")
    assert [column for column in COLUMNS if f"`{column}`" not in readme] == []


def test_checkpoint_files_are_documented(project: Path):
    text = section("docs/formats.md", "## Checkpoints")
    written = sorted(path.name for path in (project / QUICK_MODEL).iterdir())
    assert [name for name in written if name not in text] == []
    for name in ("thresholds.json", "last/"):
        assert name in text


def paper_rows(paper: str) -> dict[tuple[str, str], list[str]]:
    """``{(dataset, model): nine values}`` from the paper's Tables 2 and 3 (tab-separated rows)."""
    rows: dict[tuple[str, str], list[str]] = {}
    dataset = None
    for line in paper.splitlines():
        cells = [re.sub(r"</?b>", "", cell).strip() for cell in line.split("\t")]
        if len(cells) != 13:
            continue
        dataset = {"JAFPE": "JAFFE"}.get(cells[0], cells[0]) or dataset
        if cells[1] in ABLATION_ROWS:
            rows[(dataset, ABLATION_ROWS[cells[1]])] = cells[4:]
    return rows


def test_reproduction_tables_hold_the_papers_numbers(shared_data: Path):
    paper = shared_data.parent / "reference" / "svml-rgcn-paper.md"
    if not paper.is_file():
        pytest.skip(f"{paper} is absent")
    expected = paper_rows(paper.read_text(encoding="utf-8"))
    assert len(expected) == 15
    text = section("docs/reproduce.md", "## 9. Your numbers beside the paper's")
    for dataset in ("RAF-ML", "RAF-Compound", "JAFFE"):
        table = text.split(f"### {dataset}\n", 1)[1].split("\n### ", 1)[0]
        header = [cell.strip() for cell in table.strip().splitlines()[0].strip("|").split("|")]
        models = [cell.removesuffix(" (paper)") for cell in header[1::2]]
        assert models == list(ABLATION_ROWS.values())
        lines = [line for line in table.splitlines() if line.startswith("| ") and ("↓" in line or "↑" in line)]
        cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
        assert [row[0] for row in cells] == PAPER_METRICS
        for column, model in enumerate(models):
            assert [row[1 + 2 * column] for row in cells] == expected[(dataset, model)], (dataset, model)
            assert all(row[2 + 2 * column] == "" for row in cells), "the 'yours' columns start empty"


def test_readme_sample_table_names_inputs_as_predict_writes_them(monkeypatch):
    """The sample table under README's first ``mlfer predict`` shows its ``input`` column as the
    command writes it: each path as given on the command line (a bare name would hide which folder
    a file came from)."""
    from mlfer.inference.inputs import iter_inputs

    text = section("README.md", "## Predict on your own photos")
    command_block, table = re.findall(r"```\w*\n(.*?)```", text, flags=re.S)[:2]
    (command,) = fenced_commands("README.md", f"```bash\n{command_block}```\n")
    assert command.name == "predict" and "--checkpoint" not in command.argv
    header, *rows = table.splitlines()
    assert header.split()[0] == "input" and rows
    monkeypatch.chdir(ROOT)  # the names do not depend on the files being there
    names = list(
        dict.fromkeys(frame.input for frame in iter_inputs(build_parser().parse_args(list(command.argv)).inputs))
    )
    assert list(dict.fromkeys(row.split()[0] for row in rows)) == names
