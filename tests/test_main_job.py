"""README's main job, run as written: its ten epoch lines are the recorded seed-0 run.

The restructured code must train exactly what it trained before (docs/lenet_metrics.json
is the seed-0 run README quotes), and README's quoted last lines must be that run's.
"""
import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r'epoch (\d+), loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+), time ')


def _readme_main_command():
    text = open(os.path.join(ROOT, 'README.md')).read()
    commands = [line.strip() for line in text.splitlines()
                if line.strip().startswith('gluon-classics train lenet') and '--seed 0' in line]
    assert len(commands) == 1, f'README should show the main job once: {commands}'
    return shlex.split(commands[0]), text


def _recorded():
    with open(os.path.join(ROOT, 'docs', 'lenet_metrics.json')) as f:
        history = json.load(f)
    history = history['history'] if isinstance(history, dict) else history
    return [(r['epoch'], f"{r['loss']:.4f}", f"{r['train_acc']:.3f}", f"{r['test_acc']:.3f}")
            for r in history]


def test_readme_quotes_the_recorded_run():
    _, text = _readme_main_command()
    quoted = [m.groups() for m in LINE.finditer(text)]
    recorded = {(str(e), *rest) for e, *rest in _recorded()}
    assert quoted and all(q in recorded for q in quoted), (quoted, recorded)


def test_main_job_prints_the_recorded_ten_lines(tmp_path, fashion_mnist_dir):
    argv, _ = _readme_main_command()
    argv = [fashion_mnist_dir if a == '../shared/data/fashion-mnist' else a for a in argv]
    # the checkout's package, run as the console script would be, from a scratch folder
    code = 'import sys; from gluon_classics.cli import main; sys.exit(main(sys.argv[1:]))'
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, '-c', code, *argv[1:]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    printed = [m.groups() for m in map(LINE.match, out.stdout.splitlines()) if m]
    assert printed == [(str(e), *rest) for e, *rest in _recorded()], out.stdout
    assert len(printed) == 10
    for name in ('lenet.params', 'lenet.json', 'lenet.png', 'lenet.params.ckpt'):
        assert (tmp_path / name).stat().st_size > 0, name
