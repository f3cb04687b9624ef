"""The benchmarks: ``python -m benchmarks MODE [options]`` from the repository's root.

    lenet          LeNet's training speed: d2l vs PyTorch vs gluon_classics
                   (= python -m benchmarks.bench_lenet)
    alexnet        AlexNet's training step, the same peers (= python -m benchmarks.bench_alexnet)
    chart          docs/speed.png from docs/measurements/lenet_speed.json
    article-chart  docs/measurements/alexnet-article.png: the article's AlexNet run beside
                   the published one, from its record

``MODE --help`` gives each mode's options. Profiling, A/B tests and the timing of single
pieces (our kernels, the loader): dev/README.md.
"""
import importlib
import sys

MODES = {'lenet': ('bench_lenet', 'main'), 'alexnet': ('bench_alexnet', 'main'),
         'chart': ('charts', 'speed'), 'article-chart': ('charts', 'article')}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MODES:
        module, function = MODES[argv[0]]
        return getattr(importlib.import_module(f'{__package__}.{module}'), function)(argv[1:])
    asked = argv[:1] in (['-h'], ['--help'])
    print(__doc__.strip(), file=sys.stdout if asked else sys.stderr)
    if argv and not asked:
        print(f'python -m benchmarks: unknown mode {argv[0]!r}: choose from '
              f'{", ".join(MODES)}', file=sys.stderr)
    return 0 if asked else 2


if __name__ == '__main__':
    sys.exit(main())
