// Deterministic vulnerabilities and policy verdicts: the same seed and digest always give the same CVEs, and the
// same seed, digest and policy always give the same verdict, so tests and demos can rely on them.
import { hashUnit, seededRandom } from './prng.ts';
import type { VerdictOverride, VulnerabilityInput } from './types.ts';

/** Severity names as Anchore spells them. */
export const SEVERITIES = ['Unknown', 'Negligible', 'Low', 'Medium', 'High', 'Critical'] as const;

/** One item of ImagePackageVulnerabilityResponse.vulnerabilities. */
export interface VulnerabilityItem {
  vuln: string;
  severity: string;
  package: string;
  package_name: string;
  package_version: string;
  package_type: string;
  package_path: string;
  purl: string;
  fix: string;
  /** Absent when there is no fix (the spec types it as a string, never null). */
  suggested_fix_version?: string;
  will_not_fix: boolean;
  url: string;
  feed: string;
  feed_group: string;
  nvd_data: Array<{ id: string; cvss_v2: CvssScores; cvss_v3: CvssScores }>;
  vendor_data: Array<{ id: string; cvss_v2: CvssScores; cvss_v3: CvssScores }>;
  is_kev: boolean;
  epss: Array<{ cve: string; epss: number; percentile: number; date: string }>;
  detected_at: string;
  fix_observed_at?: string;
  inherited_from_base: boolean;
  /** VEX status; absent when the image has no VEX annotation (the simulator has none). */
  annotation_status?: 'not_affected' | 'affected' | 'fixed' | 'under_investigation';
}

interface CvssScores {
  base_score: number;
  exploitability_score: number;
  impact_score: number;
}

const OS_PACKAGES: Array<[string, string]> = [
  ['openssl', 'dpkg'],
  ['libc6', 'dpkg'],
  ['zlib1g', 'dpkg'],
  ['curl', 'dpkg'],
  ['libssl3', 'dpkg'],
  ['busybox', 'apk'],
  ['ncurses-libs', 'apk'],
  ['bash', 'dpkg'],
  ['tar', 'dpkg'],
  ['glibc', 'rpm'],
];
const NON_OS_PACKAGES: Array<[string, string]> = [
  ['lodash', 'npm'],
  ['express', 'npm'],
  ['minimist', 'npm'],
  ['requests', 'python'],
  ['urllib3', 'python'],
  ['log4j-core', 'java-archive'],
  ['jackson-databind', 'java-archive'],
  ['golang.org/x/net', 'go-module'],
  ['rack', 'gem'],
  ['axios', 'npm'],
];
const OS_TYPES = new Set(['dpkg', 'apk', 'rpm', 'os']);
const SEVERITY_WEIGHTS: Array<[string, number]> = [
  ['Unknown', 0.05],
  ['Negligible', 0.15],
  ['Low', 0.4],
  ['Medium', 0.7],
  ['High', 0.9],
  ['Critical', 1],
];
const BASE_SCORES: Record<string, number> = { Unknown: 0, Negligible: 1.9, Low: 3.1, Medium: 5.5, High: 7.5, Critical: 9.8 };

/** True when a package type counts as an OS package (vuln_type `os`). */
export function isOsPackageType(t: string): boolean {
  return OS_TYPES.has(t);
}

function scores(severity: string, r: () => number): CvssScores {
  const base = BASE_SCORES[severity] ?? 0;
  return { base_score: base === 0 ? -1 : Math.round((base + r() * 0.4) * 10) / 10, exploitability_score: Math.round(r() * 39) / 10, impact_score: Math.round(r() * 59) / 10 };
}

function purlType(packageType: string): string {
  switch (packageType) {
    case 'dpkg':
      return 'deb/debian';
    case 'apk':
      return 'apk/alpine';
    case 'rpm':
      return 'rpm/redhat';
    case 'python':
      return 'pypi';
    case 'java-archive':
      return 'maven';
    case 'go-module':
      return 'golang';
    default:
      return packageType;
  }
}

function item(seed: number, v: VulnerabilityInput & { package_version?: string }, detectedAt: string, r: () => number): VulnerabilityItem {
  const packageType = v.package_type ?? 'dpkg';
  const os = isOsPackageType(packageType);
  let name = v.package ?? 'libsim';
  let version = v.package_version ?? '1.0.0';
  const dash = name.lastIndexOf('-');
  if (v.package !== undefined && v.package_version === undefined && dash > 0 && /^\d/.test(name.slice(dash + 1))) {
    version = name.slice(dash + 1);
    name = name.slice(0, dash);
  }
  const fix = v.fix ?? 'None';
  const s = scores(v.severity, r);
  const out: VulnerabilityItem = {
    vuln: v.vuln,
    severity: v.severity,
    package: `${name}-${version}`,
    package_name: name,
    package_version: version,
    package_type: packageType,
    package_path: os ? 'pkgdb' : `/usr/lib/${name}`,
    purl: `pkg:${purlType(packageType)}/${name}@${version}`,
    fix,
    will_not_fix: v.will_not_fix ?? false,
    url: `https://nvd.nist.gov/vuln/detail/${v.vuln}`,
    feed: 'vulnerabilities',
    feed_group: os ? (packageType === 'apk' ? 'alpine:3.19' : packageType === 'rpm' ? 'rhel:9' : 'debian:12') : `github:${packageType === 'java-archive' ? 'java' : packageType}`,
    nvd_data: [{ id: v.vuln, cvss_v2: s, cvss_v3: s }],
    vendor_data: [],
    is_kev: v.is_kev ?? knownExploited(seed, v.vuln),
    epss: epssOf(seed, v, detectedAt),
    detected_at: detectedAt,
    inherited_from_base: false,
  };
  if (fix !== 'None') {
    out.suggested_fix_version = fix;
    out.fix_observed_at = detectedAt;
  }
  return out;
}

/**
 * Share of CVEs on CISA's Known Exploited Vulnerabilities list: about 1,300 of some 250,000 CVEs (about 0.5 %). The
 * generator makes them High or Critical, as they mostly are.
 */
const KEV_SHARE = 0.006;

/** Whether a CVE is known-exploited: a property of the CVE id (the same on every image that has it), never of a GHSA id. */
export function knownExploited(seed: number, vuln: string): boolean {
  return vuln.startsWith('CVE-') && hashUnit(seed, 'kev', vuln) < KEV_SHARE;
}

/**
 * FIRST's EPSS for a CVE (empty for other ids, as Anchore has none for them): the probability of exploitation in the
 * next 30 days and its percentile among all scored CVEs. Most CVEs score below 0.01 (70 %), few above 0.5 (2 %);
 * known-exploited ones score 0.3–0.97. The percentile rises with the score, as FIRST's does.
 */
export function epssOf(seed: number, v: Pick<VulnerabilityInput, 'vuln' | 'is_kev' | 'epss'>, detectedAt: string): VulnerabilityItem['epss'] {
  if (!v.vuln.startsWith('CVE-')) return [];
  // Bands of [score from, score to, percentile from, percentile to, share of CVEs].
  const bands: Array<[number, number, number, number]> = [
    [0.0004, 0.01, 0, 0.7],
    [0.01, 0.1, 0.7, 0.9],
    [0.1, 0.5, 0.9, 0.98],
    [0.5, 0.975, 0.98, 1],
  ];
  let score: number;
  if (v.epss !== undefined) score = v.epss;
  else {
    const u = hashUnit(seed, 'epss', v.vuln);
    const kev = v.is_kev ?? knownExploited(seed, v.vuln);
    score = kev ? 0.3 + u * 0.67 : bandValue(bands, u);
  }
  score = round5(score);
  const band = bands.find(([, to]) => score <= to) ?? bands[bands.length - 1]!;
  const [from, to, pFrom, pTo] = band;
  const percentile = pFrom + ((Math.max(from, score) - from) / (to - from)) * (pTo - pFrom);
  return [{ cve: v.vuln, epss: round5(score), percentile: round5(Math.min(1, percentile)), date: detectedAt.slice(0, 10) }];
}

function bandValue(bands: Array<[number, number, number, number]>, u: number): number {
  // u is a percentile: find its band, and the score at that place in the band.
  const band = bands.find(([, , , pTo]) => u < pTo) ?? bands[bands.length - 1]!;
  const [from, to, pFrom, pTo] = band;
  return from + ((u - pFrom) / (pTo - pFrom)) * (to - from);
}

function round5(x: number): number {
  return Math.round(x * 1e5) / 1e5;
}

/** The deterministic vulnerability list of an image (all types, including will_not_fix ones). */
export function generateVulnerabilities(seed: number, digest: string, detectedAt: string): VulnerabilityItem[] {
  const r = seededRandom(seed, 'vulns', digest);
  const count = Math.floor(r() * 30);
  const seen = new Set<string>();
  const out: VulnerabilityItem[] = [];
  for (let i = 0; i < count; i++) {
    const os = r() < 0.6;
    const pool = os ? OS_PACKAGES : NON_OS_PACKAGES;
    const [pkg, packageType] = pool[Math.floor(r() * pool.length)]!;
    const x = r();
    let severity: string = SEVERITY_WEIGHTS.find(([, w]) => x < w)?.[0] ?? 'Medium';
    let id = '';
    do {
      id = `CVE-${2018 + Math.floor(r() * 7)}-${10000 + Math.floor(r() * 40000)}`;
    } while (seen.has(id));
    seen.add(id);
    // Known-exploited CVEs are High or Critical on every image (a property of the CVE).
    if (knownExploited(seed, id)) severity = hashUnit(seed, 'kev-severity', id) < 0.6 ? 'Critical' : 'High';
    const major = 1 + Math.floor(r() * 3);
    const minor = Math.floor(r() * 20);
    const patch = Math.floor(r() * 10);
    const hasFix = r() < 0.55;
    const wontFix = !hasFix && r() < 0.3;
    const input: VulnerabilityInput & { package_version: string } = {
      vuln: id,
      severity,
      package: pkg,
      package_type: packageType,
      will_not_fix: wontFix,
      package_version: `${major}.${minor}.${patch}`,
    };
    if (hasFix) input.fix = `${major}.${minor}.${patch + 1 + Math.floor(r() * 3)}`;
    out.push(item(seed, input, detectedAt, r));
  }
  return out;
}

/** Full vulnerability items built from test-supplied inputs. */
export function vulnerabilitiesFromInputs(seed: number, digest: string, inputs: VulnerabilityInput[], detectedAt: string): VulnerabilityItem[] {
  const r = seededRandom(seed, 'vuln-overrides', digest);
  return inputs.map((v) => item(seed, v, detectedAt, r));
}

/** Filters by vuln_type (`os`, `non-os`, `all`) and the vendor_only flag (true hides will_not_fix findings). */
export function filterVulnerabilities(items: VulnerabilityItem[], vulnType: string, vendorOnly: boolean): VulnerabilityItem[] {
  return items.filter((v) => {
    if (vendorOnly && v.will_not_fix) return false;
    if (vulnType === 'all') return true;
    return (vulnType === 'os') === isOsPackageType(v.package_type);
  });
}

/** A policy finding (PolicyEvaluationFinding). */
export interface PolicyFinding {
  trigger_id: string;
  gate: string;
  trigger: string;
  message: string;
  action: 'go' | 'warn' | 'stop';
  policy_id: string;
  rule_id: string;
  recommendation: string;
  allowlisted: boolean;
}

/** The verdict of one evaluation. */
export interface Verdict {
  status: 'pass' | 'fail';
  final_action: 'go' | 'warn' | 'stop';
  findings: PolicyFinding[];
}

function finding(v: VulnerabilityItem | undefined, index: number, action: 'go' | 'warn' | 'stop', policyId: string, digest: string): PolicyFinding {
  const ruleId = `${policyId}-${action === 'stop' ? 'crit' : action === 'warn' ? 'med' : 'info'}`;
  if (v === undefined) {
    return {
      trigger_id: `sim-${digest.slice(7, 19)}-${index}`,
      gate: 'dockerfile',
      trigger: 'instruction',
      message: `Dockerfile directive 'USER' not found (simulated finding ${index + 1})`,
      action,
      policy_id: policyId,
      rule_id: ruleId,
      recommendation: 'Run the container as a non-root user',
      allowlisted: false,
    };
  }
  const fixText = v.fix === 'None' ? 'fixed in: None' : `fixed in: ${v.fix}`;
  return {
    trigger_id: `${v.vuln}+${v.package}`,
    gate: 'vulnerabilities',
    trigger: 'package',
    message: `${v.severity.toUpperCase()} Vulnerability found in ${isOsPackageType(v.package_type) ? 'os' : 'non-os'} package type (${v.package_type}) - ${v.package} (${fixText})(${v.vuln} - ${v.url})`,
    action,
    policy_id: policyId,
    rule_id: ruleId,
    recommendation: v.fix === 'None' ? 'No fix available yet' : `Upgrade ${v.package_name} to ${v.fix}`,
    allowlisted: false,
  };
}

/**
 * The verdict for (digest, policy). Without an override: about 70% pass/go, 15% pass/warn, 15% fail/stop, with
 * findings whose actions agree with the final action (taken from the image's own vulnerabilities where possible).
 */
export function computeVerdict(seed: number, digest: string, policyId: string, vulns: VulnerabilityItem[], override?: VerdictOverride): Verdict {
  const r = seededRandom(seed, 'verdict-findings', digest, policyId);
  let status: 'pass' | 'fail';
  let finalAction: 'go' | 'warn' | 'stop';
  let count: number;
  if (override !== undefined) {
    status = override.status;
    finalAction = override.final_action;
    count = override.findings ?? (finalAction === 'go' ? 0 : 1 + Math.floor(r() * 3));
  } else {
    const u = hashUnit(seed, 'verdict', digest, policyId);
    if (u < 0.7) {
      status = 'pass';
      finalAction = 'go';
      count = 0;
    } else if (u < 0.85) {
      status = 'pass';
      finalAction = 'warn';
      count = 1 + Math.floor(r() * 3);
    } else {
      status = 'fail';
      finalAction = 'stop';
      count = 1 + Math.floor(r() * 3);
    }
  }
  const rank = (v: VulnerabilityItem): number => SEVERITIES.indexOf(v.severity as (typeof SEVERITIES)[number]);
  const pool = [...vulns].sort((a, b) => rank(b) - rank(a));
  const preferred = finalAction === 'stop' ? pool.filter((v) => rank(v) >= 4) : finalAction === 'warn' ? pool.filter((v) => rank(v) === 3) : pool;
  const source = preferred.length > 0 ? preferred : pool;
  const findings: PolicyFinding[] = [];
  for (let i = 0; i < count; i++) findings.push(finding(i < source.length ? source[i] : undefined, i, finalAction, policyId, digest));
  return { status, final_action: finalAction, findings };
}
