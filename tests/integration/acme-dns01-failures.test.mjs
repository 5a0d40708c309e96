// acme-dns01-failures — DNS-01 renewals that cannot work, against real knot + pebble on
// loopback: a wrong TSIG secret, an unreachable DNS server, an exec hook that fails and one
// that hangs. Each time: one clear logged problem naming the cause, back-off with growing
// delays (acme-state.json, metrics), the current certificate still served, and no TXT
// record left in the zone (a failing or hanging hook had already written one).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startEdge, adminGet, slow, tmpDir, freePort, waitFor } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';
import { startDns } from '../lib/dns.mjs';

const T = 60000 * slow;
const DOMAINS = ['ott.test', '*.ott.test'];

describe('ACME DNS-01 failures: clear problem, back-off, the current certificate stays, no stale record', () => {
    let dns, pebble, root, baseState, baseSerial;
    before(async () => {
        dns = await startDns({ zones: ['ott.test'] });
        pebble = await startPebble({ slot: 12, dnsServer: dns.recursor });
        root = await pebble.root();
        // a good certificate first, kept to start every failing renewal from
        baseState = path.join(tmpDir(), 'state');
        const edge = await startEdge({
            config: {
                ...edgeConfigFor(pebble, { domains: DOMAINS, acme: rfc2136() }),
                state_dir: baseState,
            },
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 30000 * slow);
            baseSerial = (await verifiedPeer(pebble.ports.tlsPort, 'www.ott.test', root)).serialNumber;
        } finally {
            await edge.stop();
        }
    });
    after(async () => {
        await pebble?.stop();
        await dns?.stop();
    });

    function rfc2136(over = {}) {
        return {
            challenges: ['dns-01'],
            dns: {
                provider: 'rfc2136',
                rfc2136: { server: dns.server, key_name: dns.key.name, key_secret: dns.key.secret, ...over },
                resolvers: [dns.server],
            },
            dns_propagation_timeout: '10s',
        };
    }

    /** Starts from a copy of the good state with a renewal due at once, and a broken DNS-01 setup. */
    async function failingRenewal(acme, problem) {
        const state = path.join(tmpDir(), 'state');
        cpSync(baseState, state, { recursive: true });
        const edge = await startEdge({
            config: {
                ...edgeConfigFor(pebble, {
                    domains: DOMAINS,
                    // pebble's 1 h certificate is due at once; retries start at 1 s
                    acme: { ...acme, renew_before: '59m58s', retry_base: '1s' },
                }),
                state_dir: state,
            },
        });
        try {
            await edge.waitForLog(/acme_stored_certificate /, 5000);
            await waitFor(() => edge.logs.filter((l) => /acme_failed/.test(l)).length >= 2, 40000 * slow, `two failed renewals:\n${edge.stderr()}`);
            const fails = edge.logs.filter((l) => /acme_failed/.test(l));
            for (const f of fails.slice(0, 2)) assert.match(f, problem);
            // back-off: growing delays, counted and persisted
            const d = fails.map((l) => Number(/retry_in_s=([\d.]+)/.exec(l)[1]));
            assert.ok(d[1] > d[0], `delays do not grow: ${d}`);
            assert.match(fails[1], /failures=2/);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_acme_consecutive_failures [2-9]/);
            assert.match(m, /ott_edge_acme_renewals_total\{result="failed"\} [2-9]/);
            const saved = JSON.parse(readFileSync(path.join(state, 'acme-state.json'), 'utf8'));
            assert.ok(saved.failures >= 2);
            assert.match(saved.last_error, problem);
            // the current certificate is still served, wildcard and all
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'www.ott.test', root);
            assert.equal(peer.serialNumber, baseSerial);
        } finally {
            await edge.stop();
        }
        // no record left behind (stopping mid-attempt cleans up too)
        assert.deepEqual(await dns.txt('_acme-challenge.ott.test'), [], 'a record was left behind');
        return edge;
    }

    it('a wrong TSIG secret', { timeout: T }, async () => {
        await failingRenewal(rfc2136({ key_secret: randomBytes(32).toString('base64') }),
            /DNS update of ott\.test\. at 127\.0\.0\.1:\d+ refused: the TSIG signature is wrong \(BADSIG\): acme\.dns\.rfc2136\.key_secret or key_algorithm does not match/);
    });

    it('an unreachable DNS server', { timeout: T }, async () => {
        const down = `127.0.0.1:${await freePort()}`;
        await failingRenewal(rfc2136({ server: down }),
            new RegExp(`no answer from acme\\.dns\\.rfc2136\\.server ${down.replace(/\./g, '\\.')} within \\d+ ms`));
    });

    it('a hook that fails (after writing the record)', { timeout: T }, async () => {
        const hook = dns.knsupdateScript(path.join(tmpDir(), 'hook.sh'), { mode: 'fail', zone: 'ott.test' });
        const edge = await failingRenewal({
            challenges: ['dns-01'],
            dns: { provider: 'exec', exec: { command: hook }, resolvers: [dns.server] },
        }, /acme\.dns\.exec\.command present _acme-challenge\.ott\.test\. exited with status 1: hook: the DNS API said no \(simulated\)/);
        assert.match(edge.stderr(), /acme_dns_exec_output action=present line="hook: the DNS API said no \(simulated\)"/);
        const calls = readFileSync(`${hook}.calls`, 'utf8');
        assert.match(calls, /^cleanup _acme-challenge\.ott\.test\. /m, 'the record the hook wrote was not cleaned up');
    });

    it('a hook that hangs (after writing the record)', { timeout: T }, async () => {
        const hook = dns.knsupdateScript(path.join(tmpDir(), 'hook.sh'), { mode: 'hang', zone: 'ott.test' });
        const edge = await failingRenewal({
            challenges: ['dns-01'],
            dns: { provider: 'exec', exec: { command: hook }, resolvers: [dns.server] },
            dns_propagation_timeout: '3s',
        }, /acme\.dns\.exec\.command present _acme-challenge\.ott\.test\. did not finish within 3 s \(acme\.dns_propagation_timeout\) and was stopped/);
        assert.match(edge.stderr(), /acme_dns_exec action=present .*timed_out=true/);
        assert.match(readFileSync(`${hook}.calls`, 'utf8'), /^cleanup _acme-challenge\.ott\.test\. /m);
    });
});
