// acme-http01 — certificates from a real ACME server (pebble, real validation) with HTTP-01
// for two names; the served chain verifies against pebble's root; a restart with the stored
// state serves the stored certificate and makes no new order; files are private; metrics.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, slow, tmpDir, waitFor } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;
const NAMES = ['a.ott-edge.test', 'b.ott-edge.test'];

describe('ACME HTTP-01 against pebble', () => {
    let pebble, up, stateDir;
    before(async () => {
        pebble = await startPebble({ slot: 0 });
        up = await startUpstream();
        stateDir = path.join(tmpDir('ott-edge-acme-'), 'state');
    });
    after(async () => {
        await pebble?.stop();
        await up?.stop();
    });

    const config = () => ({
        ...edgeConfigFor(pebble, { domains: NAMES, acme: { challenges: ['http-01'] }, upstream: up.url }),
        state_dir: stateDir,
    });

    it('issues one certificate for two names and serves it; the chain verifies against pebble\'s root', { timeout: T }, async () => {
        const edge = await startEdge({ config: config() });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            const logs = edge.stderr();
            assert.match(logs, /acme_challenge name=a\.ott-edge\.test type=http-01/);
            assert.match(logs, /acme_challenge name=b\.ott-edge\.test type=http-01/);
            assert.doesNotMatch(logs, /tls-alpn-01/);
            assert.equal(pebble.orderCount(), 1);
            const root = await pebble.root();
            for (const name of NAMES) {
                const peer = await verifiedPeer(pebble.ports.tlsPort, name, root);
                assert.match(peer.issuer.CN, /Pebble Intermediate/);
                assert.match(peer.subjectaltname, /DNS:a\.ott-edge\.test/);
                assert.match(peer.subjectaltname, /DNS:b\.ott-edge\.test/);
            }
            // ready once a real certificate is served (and the upstream answers)
            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_certificate_expiry_seconds\{name="a\.ott-edge\.test"\} (3[0-9]{3})/);
            assert.match(m, /ott_edge_certificate_expiry_seconds\{name="b\.ott-edge\.test"\} \d+/);
            assert.match(m, /ott_edge_acme_renewals_total\{result="ok"\} 1/);
            assert.match(m, /ott_edge_acme_renewals_total\{result="failed"\} 0/);
            const next = Number(/ott_edge_acme_next_attempt_timestamp_seconds (\d+)/.exec(m)[1]);
            // renewal when one third of the 3600 s lifetime remains: ~2400 s from now
            assert.ok(Math.abs(next - (Date.now() / 1000 + 2400)) < 60, `next attempt ${next}`);
        } finally {
            await edge.stop();
        }
        // storage: keys private, no temp files left
        for (const f of ['account.key', 'cert.key']) assert.equal(statSync(path.join(stateDir, f)).mode & 0o777, 0o600, f);
        assert.ok(readFileSync(path.join(stateDir, 'cert.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
        assert.match(readFileSync(path.join(stateDir, 'account.json'), 'utf8'), /my-account/);
        assert.ok(!existsSync(path.join(stateDir, 'cert.key.next')));
    });

    it('a restart with the stored state serves the stored certificate at once and makes no new order', { timeout: T }, async () => {
        const before = pebble.orderCount();
        const stored = readFileSync(path.join(stateDir, 'cert.pem'), 'utf8');
        const edge = await startEdge({ config: config() });
        try {
            await edge.waitForLog(/acme_stored_certificate /, 5000);
            const root = await pebble.root();
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', root);
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
            await edge.waitForLog(/acme_next_attempt/, 5000);
            await new Promise((r) => setTimeout(r, 1000));
            assert.equal(pebble.orderCount(), before, 'a new order was made although the stored certificate is good');
            assert.doesNotMatch(edge.stderr(), /acme_order_start|self-signed.*fallback=false/);
            assert.match(edge.stderr(), /fallback=false/);
        } finally {
            await edge.stop();
        }
        assert.equal(readFileSync(path.join(stateDir, 'cert.pem'), 'utf8'), stored);
    });

    it('recovers from a crash between writing cert.pem and renaming cert.key.next (no new order)', { timeout: T }, async () => {
        // what a crash mid-write leaves: the new chain, the old key, the new key under its temporary name
        const { writeFileSync, copyFileSync } = await import('node:fs');
        const { execFileSync } = await import('node:child_process');
        const newKey = readFileSync(path.join(stateDir, 'cert.key'), 'utf8');
        copyFileSync(path.join(stateDir, 'cert.key'), path.join(stateDir, 'cert.key.next'));
        writeFileSync(path.join(stateDir, 'cert.key'), execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']));
        const before = pebble.orderCount();
        const edge = await startEdge({ config: config() });
        try {
            await edge.waitForLog(/acme_stored_key_recovered/, 5000);
            await edge.waitForLog(/acme_stored_certificate /, 5000);
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', await pebble.root());
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
            await new Promise((r) => setTimeout(r, 500));
            assert.equal(pebble.orderCount(), before);
        } finally {
            await edge.stop();
        }
        assert.equal(readFileSync(path.join(stateDir, 'cert.key'), 'utf8'), newKey);
        assert.ok(!existsSync(path.join(stateDir, 'cert.key.next')));
    });

    it('a corrupt stored certificate is reported and replaced, never a crash', { timeout: T }, async () => {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(path.join(stateDir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
        const before = pebble.orderCount();
        const edge = await startEdge({ config: config() });
        try {
            await edge.waitForLog(/acme_stored_certificate_unusable/, 5000);
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            assert.equal(pebble.orderCount(), before + 1);
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'b.ott-edge.test', await pebble.root());
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
        } finally {
            await edge.stop();
        }
    });

    it('a changed acme.directory (e.g. staging -> production) replaces the stored certificate at once', { timeout: T }, async () => {
        const before = pebble.orderCount();
        const cfg = config();
        cfg.acme.directory = pebble.directory.replace('127.0.0.1', 'localhost'); // same CA, another directory URL
        const edge = await startEdge({ config: cfg });
        try {
            await edge.waitForLog(/acme_directory_changed/, 5000);
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            assert.equal(pebble.orderCount(), before + 1);
            assert.match(readFileSync(path.join(stateDir, 'account.json'), 'utf8'), /localhost/);
        } finally {
            await edge.stop();
        }
    });
});
