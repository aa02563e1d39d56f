import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { k8sInventoryConfig } from './k8s-inventory.ts';

const opts = {
  binary: '/bin/false',
  kubeconfig: '/k/config',
  anchoreUrl: 'http://127.0.0.1:8228/',
  username: 'admin',
  password: 'secret-pass',
  account: 'admin',
  pollSeconds: 60,
  clusterName: 'bench-x',
  workDir: '/tmp/x',
  namespaces: ['bench-x-cmp'],
};

describe('k8sInventoryConfig', () => {
  it('when the agent config is written, then it names the simulator, the cluster and the poll, and carries an empty password key for the environment to fill', () => {
    const text = k8sInventoryConfig(opts);
    const cfg = parse(text) as Record<string, any>;
    expect(cfg['anchore']).toMatchObject({ url: 'http://127.0.0.1:8228', user: 'admin', password: '', account: 'admin' });
    expect(cfg['mode']).toBe('periodic');
    expect(cfg['polling-interval-seconds']).toBe(60);
    expect(cfg['kubeconfig']).toEqual({ path: '/k/config', cluster: 'bench-x' });
    expect(cfg['namespace-selectors']['include']).toEqual(['bench-x-cmp']);
    expect(text).not.toContain('secret-pass');
  });

  it('when the health interval is outside what the agent accepts, then it throws', () => {
    expect(() => k8sInventoryConfig({ ...opts, healthReportSeconds: 10 })).toThrow(/30\.\.600/);
  });
});
