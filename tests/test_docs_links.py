"""README.md and docs/: every relative link names a file that exists, and every #anchor into
a Markdown page names one of its headings (GitHub's rule: lower case, punctuation dropped,
spaces to hyphens)."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')


def _pages(root):
    return [os.path.join(root, 'README.md')] + sorted(
        glob.glob(os.path.join(root, 'docs', '**', '*.md'), recursive=True))


def _prose(path):
    """The lines outside fenced code blocks."""
    fenced = False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.lstrip().startswith('```'):
                fenced = not fenced
            elif not fenced:
                yield line


def _anchors(path):
    slugs = set()
    for line in _prose(path):
        if line.startswith('#'):
            title = line.lstrip('#').strip().lower()
            slugs.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return slugs


def broken_links(root):
    """'page: target (why)' for each relative link that does not resolve."""
    broken = []
    for page in _pages(root):
        for line in _prose(page):
            for target in LINK.findall(line):
                if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
                    continue
                path, _, anchor = target.partition('#')
                resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) \
                    if path else page
                name = f'{os.path.relpath(page, root)}: {target}'
                if not os.path.exists(resolved):
                    broken.append(f'{name} (no such file)')
                elif anchor and resolved.endswith('.md') and anchor not in _anchors(resolved):
                    broken.append(f'{name} (no such heading)')
    return broken


def test_every_relative_link_in_readme_and_docs_resolves():
    assert broken_links(ROOT) == []


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'page.md').write_text('# A page\n\n## Some heading\n')
    (tmp_path / 'README.md').write_text(
        '[ok](docs/page.md) [ok](docs/page.md#some-heading) [web](https://example.org/x)\n'
        '[gone](docs/gone.md) [bad anchor](docs/page.md#nothing)\n'
        '```\n[in code](docs/not-checked.md)\n```\n')
    assert broken_links(str(tmp_path)) == ['README.md: docs/gone.md (no such file)',
                                           'README.md: docs/page.md#nothing (no such heading)']
