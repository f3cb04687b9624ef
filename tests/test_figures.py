"""The docs' figures: the ablation's ranking and curves, the chart of the LeNet speed logs,
and the article's AlexNet run beside the published one."""
import json
import os
import re

from benchmarks import charts  # python -m benchmarks chart / article-chart
from gluon_classics.experiments.ablation import RESULT_FILES
from gluon_classics.experiments.ablation_plots import FIGURES, plot_curves, plot_ranking, redraw
from helpers import PNG

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _result(name, finals, curve=(0.3, 0.6)):
    runs = [{'seed': s, 'history': [{'epoch': e + 1, 'test_acc': a}
                                    for e, a in enumerate(curve[:-1] + (final,))],
             'diverged': None} for s, final in enumerate(finals)]
    mean = sum(finals) / len(finals) if finals else None
    std = 0.01 if len(finals) > 1 else None
    return {'name': name, 'test_acc': list(finals), 'test_acc_mean': mean,
            'test_acc_std': std, 'runs': runs}


CONFIG = {'dataset': 'fashion-mnist', 'epochs': 2, 'batch_size': 256, 'lr': 0.9, 'seeds': [0, 1],
          'num_classes': 10, 'date': '2026-12-02', 'machine': 'test'}


def test_ablation_ranking_best_first_with_every_seed(tmp_path):
    results = [_result('baseline', [0.78, 0.76]), _result('relu', [0.1, 0.1], (0.1, 0.1)),
               _result('relu-lr0.1', [0.82, 0.80]), _result('kernel-3', [0.70, 0.74]),
               dict(_result('nan', []), runs=[])]
    order = plot_ranking(results, str(tmp_path / 'ranking.png'), CONFIG)
    assert order == ['relu-lr0.1', 'baseline', 'kernel-3', 'relu', 'nan']
    assert (tmp_path / 'ranking.png').read_bytes()[:8] == PNG


def test_ablation_curves_name_every_variant_once(tmp_path):
    flat = (0.1, 0.1)
    results = [_result('baseline', [0.78]), _result('relu', [0.1], flat),
               _result('relu+max', [0.1], flat)] + [_result(f'v{i}', [0.5 + i / 100])
                                                   for i in range(12)]
    legend = plot_curves(results, str(tmp_path / 'curves.png'), dict(CONFIG, seeds=[0]))
    # the two flat at chance level share one entry instead of hiding each other
    assert legend == ['baseline', 'relu, relu+max (chance level)'] + [f'v{i}' for i in range(12)]
    assert (tmp_path / 'curves.png').read_bytes()[:8] == PNG


def test_the_committed_ablation_figures_redraw(tmp_path):
    (tmp_path / 'results.json').write_bytes(
        open(os.path.join(ROOT, 'docs', 'ablation', 'results.json'), 'rb').read())
    redraw(str(tmp_path))
    assert RESULT_FILES[-len(FIGURES):] == FIGURES  # what ablate checks before training
    for name in ('ranking.png', 'curves.png'):
        assert (tmp_path / name).read_bytes()[:8] == PNG
        assert open(os.path.join(ROOT, 'docs', 'ablation', name), 'rb').read(8) == PNG


def _text(relative):
    with open(os.path.join(ROOT, relative)) as f:
        return f.read()


def test_speed_chart_data_are_the_logs_tables_and_readme_has_the_headline(tmp_path):
    with open(os.path.join(ROOT, 'docs', 'measurements', 'lenet_speed.json')) as f:
        data = json.load(f)
    pages = {machine: _text(page) for machine, page in data['pages'].items()}
    assert set(pages) == set(data['machines'])
    for run in data['runs']:  # every run's min / median, as its machine's dated log gives them
        for peer in ('d2l', 'torch', 'ours'):
            low, median = run[peer]
            assert f'{low:,} / {median:,}' in pages[run['machine']], (run, peer)
    # README's Results and docs/speed.md quote the headline run: its medians and ratios
    headline, = [run for run in data['runs'] if run.get('headline')]
    medians = {peer: headline[peer][1] for peer in ('d2l', 'torch', 'ours')}
    # the benchmark prints its ratios from unrounded medians: within rounding of the table's
    ratios = [medians['ours'] / medians[peer] for peer in ('d2l', 'torch')]
    for page in ('README.md', 'docs/speed.md'):
        text = _text(page)
        for figure in [f'{m:,}' for m in medians.values()]:
            assert figure in text, (page, figure)
        quoted = [float(x) for x in re.findall(r'(\d+\.\d\d)x', text)]
        for ratio in ratios:
            assert any(abs(q - ratio) < 0.006 for q in quoted), (page, ratio)
    labels = charts.draw_speed(data, str(tmp_path / 'speed.png'))
    assert len(labels) == 6 and labels[0].startswith('AVX-512 CPU, after issues 32-36, 2 '
                                                     'threads\nour operators')
    assert (tmp_path / 'speed.png').read_bytes()[:8] == PNG


def test_article_page_quotes_its_record_and_the_chart_draws_both_runs(tmp_path):
    with open(os.path.join(ROOT, 'docs', 'measurements', 'alexnet-article.json')) as f:
        record = json.load(f)
    ours, published = record['history'], record['reference']['history']
    rows = {int(m[0]): m[1:] for m in re.findall(r'^\| (\d) \|(.*)\|$',
                                                 _text('docs/measurements/alexnet-article.md'),
                                                 re.M)}
    assert sorted(rows) == [r['epoch'] for r in published]  # one row per published epoch
    for epoch, cells in rows.items():
        cells = [c.strip() for c in cells[0].split('|')]
        mine = [r for r in ours if r['epoch'] == epoch]
        want = ['%.4f' % mine[0]['loss'], '%.3f' % mine[0]['train_acc'],
                '%.3f' % mine[0]['test_acc']] if mine else ['', '', '']
        ref, = [r for r in published if r['epoch'] == epoch]
        want += ['%.4f' % ref['loss'], '%.3f' % ref['train_acc'], '%.3f' % ref['test_acc']]
        assert cells == want, epoch
    labels = charts.draw_article(record, str(tmp_path / 'article.png'))
    assert labels == [f'{who}: {name}' for who in ('ours', 'published (GPU)')
                      for name in ('train loss', 'train acc', 'test acc')]
    assert (tmp_path / 'article.png').read_bytes()[:8] == PNG
