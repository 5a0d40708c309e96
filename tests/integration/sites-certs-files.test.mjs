// sites-certs-files — several sites with their own certificate files: each SNI name gets its
// site's certificate (exact and wildcard names; an unknown name and no SNI get the default
// site's), over real handshakes; SIGHUP re-reads every site's files, so a new file for one site
// is served while the other keeps its own, and a broken file for one site keeps that site's
// old certificate without stopping the other's reload; an HTTP/2 connection opened before the
// reload keeps working; TLS sessions resume for every site (the ticket keys live on the
// front context, whichever site's certificate a handshake switches to); a bad file at start
// names sites[N].
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import {
    startEdge, startUpstream, adminGet, runProcess, slow, tmpDir, makeCert, peerCert, h2Connect, h2Request, waitFor,
} from '../lib/harness.mjs';

const T = 30000 * slow;

/** One TLS 1.3 connection with one request (s_client reads until the server closes, ticket
 *  included); returns {reused, fresh, subject} from s_client's own words. */
async function handshake(port, servername, { sessIn, sessOut } = {}) {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-servername', servername, '-ign_eof'];
    if (sessIn) args.push('-sess_in', sessIn);
    if (sessOut) args.push('-sess_out', sessOut);
    const input = `GET /api/status HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`;
    const r = await runProcess('/usr/bin/openssl', args, { input, timeoutMs: 10000 * slow });
    const subject = /^subject=.*CN ?= ?([^,\n]+)/m.exec(r.stdout);
    return { reused: /^Reused, TLSv1\.3/m.test(r.stdout), fresh: /^New, TLSv1\.3/m.test(r.stdout), subject: subject ? subject[1].trim() : null };
}

function atomicCopy(from, to) {
    writeFileSync(`${to}.tmp`, readFileSync(from));
    renameSync(`${to}.tmp`, to);
}

describe('certificate files per site', () => {
    let up, edge, dir, A, A2, B, live;
    const serial = async (servername) => (await peerCert(edge.httpsPort, { servername })).serialNumber;
    before(async () => {
        up = await startUpstream();
        dir = tmpDir();
        A = makeCert({ dir, cn: 'site-a', sans: ['a.files.test'], name: 'a' });
        A2 = makeCert({ dir, cn: 'site-a-2', sans: ['a.files.test'], name: 'a2' });
        B = makeCert({ dir, cn: 'site-b', sans: ['b.files.test', '*.b.files.test'], name: 'b' });
        live = { a: { cert: path.join(dir, 'live-a.pem'), key: path.join(dir, 'live-a.key') } };
        atomicCopy(A.certFile, live.a.cert);
        atomicCopy(A.keyFile, live.a.key);
        edge = await startEdge({
            config: {
                default_site: 'b',
                sites: [
                    { name: 'a', domains: ['a.files.test'], upstream: up.url, tls: { cert_file: live.a.cert, key_file: live.a.key } },
                    { name: 'b', domains: ['b.files.test', '*.b.files.test'], upstream: up.url, tls: { cert_file: B.certFile, key_file: B.keyFile } },
                ],
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('SNI picks the site: exact and wildcard names; unknown names and no SNI get the default site\'s', { timeout: T }, async () => {
        assert.equal(await serial('a.files.test'), A.serial);
        assert.equal(await serial('A.FILES.TEST'), A.serial);
        assert.equal(await serial('b.files.test'), B.serial);
        assert.equal(await serial('x.b.files.test'), B.serial, 'the wildcard name');
        assert.equal(await serial('unknown.test'), B.serial, 'an unknown name: the default site');
        assert.equal(await serial('y.x.b.files.test'), B.serial, 'two labels under the wildcard: the default site');
        assert.equal(await serial(undefined), B.serial, 'no SNI: the default site');
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');
        const m = (await adminGet(edge, '/metrics')).body;
        assert.match(m, /ott_edge_site_certificate_self_signed\{site="a"\} 0/);
        assert.match(m, /ott_edge_site_certificate_expiry_seconds\{site="b"\} \d+/);
        assert.match(m, /ott_edge_certificate_expiry_seconds\{name="\*\.b\.files\.test"\} \d+/);
        assert.match(m, /ott_edge_certificate_expiry_seconds\{name="a\.files\.test"\} \d+/);
        assert.doesNotMatch(m, /ott_edge_acme_site_/, 'no ACME job without an ACME site');
        // the status page: each site with its own certificate
        const st = JSON.parse((await adminGet(edge, '/status.json')).body);
        assert.deepEqual(st.sites.map((s) => [s.name, s.domains, s.certificate.source, s.certificate.subject, s.certificate.names, s.certificate.acme]), [
            ['a', ['a.files.test'], 'file', 'site-a', ['a.files.test'], null],
            ['b', ['b.files.test', '*.b.files.test'], 'file', 'site-b', ['b.files.test', '*.b.files.test'], null],
        ]);
    });

    it('TLS sessions resume for every site', { timeout: T }, async () => {
        for (const [name, cn] of [['a.files.test', 'site-a'], ['b.files.test', 'site-b']]) {
            const sess = path.join(dir, `sess-${name}`);
            const first = await handshake(edge.httpsPort, name, { sessOut: sess });
            assert.ok(first.fresh, `${name}: a full handshake first`);
            assert.equal(first.subject, cn, `${name}: its site's certificate`);
            const again = await handshake(edge.httpsPort, name, { sessIn: sess });
            assert.ok(again.reused, `${name}: the second connection resumes`);
        }
    });

    it('SIGHUP re-reads each site\'s files: one site changes, the other keeps its own; a broken file changes nothing; open connections survive', { timeout: T }, async () => {
        const session = await h2Connect(edge.httpsPort, { servername: 'a.files.test' });
        try {
            assert.equal((await h2Request(session, '/api/status', { headers: { ':authority': 'a.files.test' } })).status, 200);
            atomicCopy(A2.certFile, live.a.cert);
            atomicCopy(A2.keyFile, live.a.key);
            const n = edge.logs.length;
            edge.kill('SIGHUP');
            await waitFor(() => edge.logs.slice(n).some((l) => /certificate_loaded .*site=a\b/.test(l)) && edge.logs.slice(n).some((l) => /certificate_loaded .*site=b\b/.test(l)) && edge.logs.slice(n).some((l) => /reloaded generation=2 /.test(l)), 5000, 'both sites reloaded');
            assert.equal(await serial('a.files.test'), A2.serial, 'site a serves its new file');
            assert.equal(await serial('b.files.test'), B.serial, 'site b keeps its certificate');
            assert.equal((await h2Request(session, '/api/status', { headers: { ':authority': 'a.files.test' } })).status, 200, 'the HTTP/2 connection opened before the reload');
            assert.ok(!session.closed && !session.destroyed);

            // a broken file for one site: the reload is refused as a whole (a reload applies a
            // configuration completely or not at all), the message names the site's key, and
            // both sites keep the certificates they had
            writeFileSync(live.a.cert, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
            const m = edge.logs.length;
            edge.kill('SIGHUP');
            const failed = await waitFor(() => edge.logs.slice(m).find((l) => /reload_failed /.test(l)), 5000, 'the reload refused');
            assert.match(failed, /sites\[0\]\.tls\.cert_file/);
            assert.ok(!edge.logs.slice(m).some((l) => /certificate_loaded /.test(l)), 'no certificate was swapped');
            assert.equal(await serial('a.files.test'), A2.serial, 'site a keeps the certificate it had');
            assert.equal(await serial('b.files.test'), B.serial);
            assert.equal((await adminGet(edge, '/livez')).status, 200);
        } finally {
            session.close();
        }
    });

    it('a certificate file that cannot be read at start names its site', { timeout: T }, async () => {
        const r = await startEdge({
            config: {
                sites: [
                    { name: 'a', domains: ['a.files.test'], upstream: up.url, tls: { cert_file: A.certFile, key_file: A.keyFile } },
                    { name: 'b', domains: ['b.files.test'], upstream: up.url, tls: { cert_file: path.join(dir, 'missing.pem'), key_file: B.keyFile } },
                ],
            },
            expectExit: true,
        });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /sites\[1\]\.tls\.cert_file: cannot read .*missing\.pem/);
    });
});
