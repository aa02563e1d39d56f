import { describe, expect, it } from '@jest/globals';
import { epssOf, generateVulnerabilities, knownExploited, vulnerabilitiesFromInputs } from './findings.ts';

const DAY = '2026-12-01T00:00:00Z';

describe('simulated known-exploited (is_kev) and EPSS fields', () => {
  const all = Array.from({ length: 4000 }, (_, i) => generateVulnerabilities(42, `sha256:${String(i).padStart(64, '0')}`, DAY)).flat();
  const share = (xs: unknown[], n: number): number => xs.length / n;

  it('when thousands of images are scanned, then known-exploited findings are rare and Critical or High, as on the real KEV list', () => {
    const kev = all.filter((v) => v.is_kev);
    expect(share(kev, all.length)).toBeGreaterThan(0.002);
    expect(share(kev, all.length)).toBeLessThan(0.02);
    const criticals = all.filter((v) => v.severity === 'Critical');
    expect(
      share(
        criticals.filter((v) => v.is_kev),
        criticals.length,
      ),
    ).toBeGreaterThan(0.01);
    expect(
      share(
        criticals.filter((v) => v.is_kev),
        criticals.length,
      ),
    ).toBeLessThan(0.1);
    expect(kev.every((v) => ['Critical', 'High'].includes(v.severity))).toBe(true);
    // Not on every image.
    const images = Array.from({ length: 400 }, (_, i) => generateVulnerabilities(42, `sha256:${String(i).padStart(64, '0')}`, DAY));
    expect(images.filter((vs) => vs.some((v) => v.is_kev)).length).toBeLessThan(100);
  });

  it('when a CVE appears on several images, then its KEV flag and EPSS are the same on each (properties of the CVE)', () => {
    const byId = new Map<string, { kev: boolean; epss: number }>();
    let repeats = 0;
    for (const v of all) {
      const seen = byId.get(v.vuln);
      const now = { kev: v.is_kev, epss: v.epss[0]!.epss };
      if (seen) {
        repeats++;
        expect(now).toEqual(seen);
      } else byId.set(v.vuln, now);
    }
    expect(repeats).toBeGreaterThan(100);
  });

  it('EPSS is skewed as FIRST publishes it: most below 0.01, few above 0.5, known-exploited ones high, percentiles rising with the score', () => {
    const scores = all.map((v) => v.epss[0]!);
    expect(scores.every((e) => e.epss >= 0 && e.epss <= 1 && e.percentile >= 0 && e.percentile <= 1 && e.date === '2026-12-01')).toBe(true);
    expect(
      share(
        scores.filter((e) => e.epss < 0.01),
        scores.length,
      ),
    ).toBeGreaterThan(0.6);
    expect(
      share(
        scores.filter((e) => e.epss > 0.5),
        scores.length,
      ),
    ).toBeLessThan(0.05);
    expect(all.filter((v) => v.is_kev).every((v) => v.epss[0]!.epss >= 0.3)).toBe(true);
    const sorted = [...scores].sort((a, b) => a.epss - b.epss);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.percentile).toBeGreaterThanOrEqual(sorted[i - 1]!.percentile);
  });

  it('an id that is not a CVE has no EPSS and is never known-exploited; tests can set both', () => {
    expect(epssOf(1, { vuln: 'GHSA-xxxx-yyyy-zzzz' }, DAY)).toEqual([]);
    expect(knownExploited(1, 'GHSA-xxxx-yyyy-zzzz')).toBe(false);
    const [set] = vulnerabilitiesFromInputs(1, 'sha256:x', [{ vuln: 'CVE-2024-3094', severity: 'Critical', is_kev: true, epss: 0.86 }], DAY);
    expect(set).toMatchObject({ is_kev: true, epss: [{ cve: 'CVE-2024-3094', epss: 0.86 }] });
  });
});
