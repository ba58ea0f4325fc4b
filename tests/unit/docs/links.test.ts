/**
 * Every relative link in README.md and docs/*.md points at a file that
 * exists, and every `#anchor` at a heading of its target, slugged the way
 * GitHub renders them, so moving a section between pages cannot leave a
 * reader at a dead link.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import GithubSlugger from 'github-slugger';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** Markdown with its fenced code blocks blanked, so `#` comments in shell samples are no headings. */
function prose(text: string): string {
  return text.replace(/^(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

function anchorsOf(page: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  for (const line of prose(readFileSync(join(ROOT, page), 'utf8')).split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading?.[1] !== undefined) {
      // GitHub slugs the rendered text: code spans and links lose their markup.
      const text = heading[1].replace(/`([^`]*)`/g, '$1').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
      anchors.add(slugger.slug(text));
    }
  }
  return anchors;
}

interface Link {
  page: string;
  target: string;
}

function linksOf(page: string): Link[] {
  const text = prose(readFileSync(join(ROOT, page), 'utf8')).replace(/`[^`\n]*`/g, '');
  const links: Link[] = [];
  for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = match[1] ?? '';
    if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ page, target });
  }
  return links;
}

describe('links in README.md and docs/', () => {
  const links = pages.flatMap(linksOf);

  it('finds the pages and their links', () => {
    expect(pages).toContain('docs/ARCHITECTURE.md');
    expect(links.length).toBeGreaterThan(20);
  });

  it.each(links.map((link) => [`${link.page} → ${link.target}`, link] as const))(
    '%s',
    (_, link) => {
      const [path = '', anchor] = link.target.split('#', 2);
      const file = path === '' ? link.page : relative(ROOT, join(ROOT, dirname(link.page), path));
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true);
      if (anchor !== undefined && file.endsWith('.md')) {
        expect([...anchorsOf(file)], `#${anchor} in ${file}`).toContain(decodeURIComponent(anchor));
      }
    },
  );
});
