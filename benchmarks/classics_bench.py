"""The benchmark tool: ``python benchmarks/classics_bench.py MODE [options]`` from the repo root.

    lenet            LeNet training speed: d2l vs PyTorch vs gluon_classics (= bench_lenet.py)
    alexnet          AlexNet's training step, the same peers (= bench_alexnet.py)
    profile-lenet    where an epoch of LeNet goes; --ab: the fast path's A/B in one process
    profile-alexnet  where AlexNet's step goes, layer by layer, MXNet beside PyTorch
    data             d2l's per-image loader vs gluon_classics's ArrayLoader
    chart            docs/speed.png from docs/measurements/lenet_speed.json
    article-chart    docs/measurements/alexnet-article.png: the article's AlexNet run beside
                     the published one, from its record

``MODE --help`` gives each mode's options; benchmarks/bench/ holds them (its __init__.py
says which module does what).
"""
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {'lenet': 'lenet', 'alexnet': 'alexnet', 'profile-lenet': 'profile_lenet',
         'profile-alexnet': 'profile_alexnet', 'data': 'data', 'chart': 'chart',
         'article-chart': 'article_chart'}


def run(module, argv):
    """``bench.<module>.main(argv)``, with this checkout's gluon_classics first on the path."""
    for path in (os.path.dirname(HERE), HERE):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module(f'bench.{module}').main(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in MODES:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ('-h', '--help')
              else sys.stdout)
        if argv and argv[0] not in ('-h', '--help'):
            print(f'classics_bench.py: unknown mode {argv[0]!r}: choose from '
                  f'{", ".join(MODES)}', file=sys.stderr)
            return 2
        return 0 if argv else 2
    return run(MODES[argv[0]], argv[1:])


if __name__ == '__main__':
    sys.exit(main())
