// metrics-promtool — /metrics checked by Prometheus' own parser and linter (`promtool check
// metrics`, Debian package `prometheus`) in every state ott-edge can be in: serving the
// self-signed fallback, serving an ACME certificate (pebble, HTTP-01: the state where the
// certificate families were once written twice), draining after SIGTERM, and with the
// upstream down. In the ACME state every family the README's metrics table documents
// must be present, and every family present must be documented there.
//
// Ports: pebble slot 45 (ACME 14450, ott-edge on 5690/5691).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, runProcess, freePort, sleep, slow, waitFor, TESTS_DIR } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor } from '../lib/pebble.mjs';

const PROMTOOL = '/usr/bin/promtool';
const T = 30000 * slow;
const missing = existsSync(PROMTOOL) ? false : `${PROMTOOL} not installed (apt-get install prometheus, or tools/deps.sh test)`;

/** Runs promtool on the text; returns {ok, out}. */
async function promtool(text) {
    const r = await runProcess(PROMTOOL, ['check', 'metrics'], { input: text, timeoutMs: 15000 * slow });
    return { ok: r.code === 0 && r.stdout.trim() === '' && r.stderr.trim() === '', out: `${r.stdout}${r.stderr}`.trim(), code: r.code };
}

async function metricsText(edge) {
    const r = await adminGet(edge, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    return r.body;
}

/** Asserts promtool accepts the text, and (our own check) that no family is written twice. */
async function assertValid(text, state) {
    const { ok, out, code } = await promtool(text);
    assert.ok(ok, `promtool check metrics (${state}) exited ${code}:\n${out}\n--- /metrics ---\n${text}`);
    const help = text.split('\n').filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
    assert.deepEqual(help.filter((n, i) => help.indexOf(n) !== i), [], `families written twice (${state})`);
}

/** Family names (from # TYPE lines). */
const families = (text) => new Set(text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]));
/** Value of the first sample of name whose line matches labels (a regex source), or undefined. */
function sample(text, name, labels = '') {
    const m = new RegExp(`^${name}${labels ? `\\{[^}]*${labels}[^}]*\\}` : '(\\{[^}]*\\})?'} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[m.length - 1]) : undefined;
}

/** Sum of every sample of name whose labels match (a regex source). */
function total(text, name, labels = '') {
    const re = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`);
    return text
        .split('\n')
        .map((l) => re.exec(l))
        .filter((m) => m && (!labels || new RegExp(labels).test(m[1] || '')))
        .reduce((a, m) => a + Number(m[2]), 0);
}

/** The metric names in the README's "### Metrics" table (rows that start with | `ott_edge_...`). */
function readmeMetrics() {
    const readme = readFileSync(path.join(TESTS_DIR, '..', 'README.md'), 'utf8');
    const start = readme.indexOf('\n### Metrics\n');
    assert.ok(start >= 0, 'README has no "### Metrics" section');
    const rest = readme.slice(start + 1);
    const end = rest.search(/\n#{2,3} /);
    const section = end >= 0 ? rest.slice(0, end) : rest;
    const names = [...section.matchAll(/^\| `(ott_edge_[a-z0-9_]+)(\{[^`]*\})?` \|/gm)].map((m) => m[1]);
    assert.ok(names.length >= 30, `only ${names.length} metrics found in the README table`);
    return names;
}

describe('promtool check metrics in every state', { skip: missing }, () => {
    let up;
    before(async () => {
        up = await startUpstream();
    });
    after(async () => up?.stop());

    it('self-signed fallback (no certificate configured, upstream up)', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, proxy: { health_interval: '200ms' } } });
        try {
            await waitFor(async () => sample(await metricsText(edge), 'ott_edge_upstream_up') === 1, 5000, 'upstream up');
            const text = await metricsText(edge);
            await assertValid(text, 'self-signed');
            assert.equal(sample(text, 'ott_edge_certificate_self_signed'), 1);
            assert.ok(sample(text, 'ott_edge_certificate_expiry_seconds', 'name="localhost"') > 0);
            assert.ok(!families(text).has('ott_edge_acme_renewals_total'), 'ACME families while ACME is off');
            assert.equal(sample(text, 'ott_edge_build_info', 'version="[0-9.]+"'), 1);
            const start = sample(text, 'ott_edge_start_time_seconds');
            assert.ok(Math.abs(start - Date.now() / 1000) < 60, `start time ${start}`);
        } finally {
            await edge.stop();
        }
    });

    it('upstream down', { timeout: T }, async () => {
        const dead = await freePort();
        const edge = await startEdge({ config: { upstream: `http://127.0.0.1:${dead}`, proxy: { health_interval: '200ms' } } });
        try {
            const r = await runProcess('/usr/bin/curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}/x`]);
            assert.equal(r.stdout, '502');
            const text = await metricsText(edge);
            await assertValid(text, 'upstream down');
            assert.equal(sample(text, 'ott_edge_upstream_up'), 0);
            assert.equal(sample(text, 'ott_edge_ready'), 0);
            assert.ok(sample(text, 'ott_edge_upstream_errors_total') >= 1);
            assert.ok(total(text, 'ott_edge_requests_total', 'code="5xx"') >= 1, text);
        } finally {
            await edge.stop();
        }
    });

    it('draining (during shutdown.delay after SIGTERM)', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, shutdown: { delay: '3s', grace: '2s' } } });
        try {
            edge.kill('SIGTERM');
            await waitFor(async () => sample(await metricsText(edge), 'ott_edge_draining') === 1, 2000, 'ott_edge_draining 1');
            const text = await metricsText(edge);
            await assertValid(text, 'draining');
            assert.equal(sample(text, 'ott_edge_ready'), 0);
            assert.deepEqual(await edge.waitExit(15000), { code: 0, signal: null });
        } finally {
            await edge.stop();
        }
    });

    describe('ACME-served certificate (pebble)', () => {
        const NAME = 'metrics.ott-edge.test';
        let pebble, edge;
        before(async () => {
            pebble = await startPebble({ slot: 45 });
            edge = await startEdge({
                config: { ...edgeConfigFor(pebble, { domains: [NAME], acme: { challenges: ['http-01'] }, upstream: up.url }) },
                waitReady: true,
                timeoutMs: 30000,
            });
        }, { timeout: 60000 * slow });
        after(async () => {
            await edge?.stop();
            await pebble?.stop();
        });

        it('validates, with one expiry series per name and the ACME families', { timeout: T }, async () => {
            // traffic through compression and the cache so every family has moved
            for (let i = 0; i < 2; i++) {
                await runProcess('/usr/bin/curl', ['-sk', '--compressed', '--resolve', `${NAME}:${pebble.ports.tlsPort}:127.0.0.1`, '-o', '/dev/null', `https://${NAME}:${pebble.ports.tlsPort}/`]);
            }
            const text = await metricsText(edge);
            await assertValid(text, 'ACME-served');
            const expiry = text.split('\n').filter((l) => l.startsWith('ott_edge_certificate_expiry_seconds'));
            assert.equal(expiry.length, 1, `expiry series: ${expiry.join(' | ')}`);
            assert.match(expiry[0], new RegExp(`\\{name="${NAME.replace(/\./g, '\\.')}"\\} \\d+$`));
            assert.equal(sample(text, 'ott_edge_certificate_self_signed'), 0);
            assert.equal(sample(text, 'ott_edge_acme_renewals_total', 'result="ok"'), 1);
            assert.equal(sample(text, 'ott_edge_acme_renewals_total', 'result="failed"'), 0);
            assert.equal(sample(text, 'ott_edge_acme_consecutive_failures'), 0);
            const last = sample(text, 'ott_edge_acme_last_success_timestamp_seconds');
            assert.ok(Math.abs(last - Date.now() / 1000) < 120, `last success ${last}`);
            assert.equal(sample(text, 'ott_edge_acme_last_failure_timestamp_seconds'), 0);
            assert.ok(sample(text, 'ott_edge_acme_http01_served_total') >= 1);
        });

        it('has every metric the README documents, and documents every metric it has', { timeout: T }, async () => {
            const documented = readmeMetrics();
            const have = families(await metricsText(edge));
            const undocumented = [...have].filter((n) => !documented.includes(n));
            const absent = documented.filter((n) => !have.has(n));
            assert.deepEqual(absent, [], 'documented in the README but not in /metrics');
            assert.deepEqual(undocumented, [], 'in /metrics but not in the README table');
        });
    });
});

describe('promtool itself', { skip: missing }, () => {
    it('rejects a family written twice (what /metrics once had with ACME on)', { timeout: T }, async () => {
        const twice =
            '# HELP x_seconds A.\n# TYPE x_seconds gauge\nx_seconds{name="a"} 1\n' +
            '# HELP x_seconds A.\n# TYPE x_seconds gauge\nx_seconds{name="a"} 1\n';
        const r = await promtool(twice);
        assert.equal(r.ok, false, 'promtool accepted a duplicate family: this test would prove nothing');
        await sleep(0);
    });
});
