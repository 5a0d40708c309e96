// e2e-websocket-close — what a browser's WebSocket `onclose` sees when ott-edge ends a
// WebSocket: Debian's Chromium (headless, playwright-core) loads the OTT-like page over
// https (a test CA trusted in the browser's NSS database, nothing ignored), whose script
// opens a WebSocket to /api/room/demo. Then:
//   - the upstream is SIGKILLed: the page sees close code 1011 (a close frame, not 1006);
//   - ott-edge is SIGTERMed (grace 1 s): the page sees 1001 Going Away.
// Skipped (not failed) when chromium, certutil or playwright-core are missing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, slow, waitFor, tmpDir } from '../lib/harness.mjs';
import { launchBrowser, browserAvailable } from '../lib/browser.mjs';

const NAME = 'ws.ott-edge.test';
const T = 60000 * slow;
const missing = await browserAvailable();

/** A test CA and a leaf for NAME signed by it (browsers refuse a self-signed leaf as a root). */
function makeCa(dir) {
    const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=ws close test CA',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', 'ca.key', '-out', 'ca.pem']);
    run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${NAME}`, '-keyout', 'leaf.key', '-out', 'leaf.csr']);
    writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=DNS:${NAME}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
    run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'leaf.pem']);
    return { ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'), certFile: path.join(dir, 'leaf.pem'), keyFile: path.join(dir, 'leaf.key') };
}

/** Loads the page, waits for its WebSocket, and records every close event it gets. */
async function openPage(page, edge) {
    await page.goto(`https://${NAME}:${edge.httpsPort}/`, { waitUntil: 'load' });
    await waitFor(async () => (await page.textContent('#s')) === 'open', 10000, 'page WebSocket open');
    await page.evaluate(() => {
        window.closes = [];
        ws.addEventListener('close', (e) => window.closes.push({ code: e.code, wasClean: e.wasClean }));
    });
}

const closesOf = (page) => page.evaluate(() => window.closes);

describe('WebSocket close codes in a browser', { skip: missing || false }, () => {
    let browser, page, certs;

    before(async () => {
        certs = makeCa(tmpDir());
        browser = await launchBrowser({ trustPem: certs.ca, hostMap: [NAME], timeoutMs: 20000 * slow });
        page = browser.page;
    }, { timeout: 60000 * slow });

    after(async () => {
        await browser?.close();
    }, { timeout: 30000 });

    it('the upstream dies: the page sees 1011, not a reset (1006)', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url, tls: { cert_file: certs.certFile, key_file: certs.keyFile } } });
        try {
            await openPage(page, edge);
            up.kill('SIGKILL');
            const closes = await waitFor(async () => {
                const c = await closesOf(page);
                return c.length ? c : null;
            }, 10000, 'the page WebSocket to close');
            assert.equal(closes[0].code, 1011, JSON.stringify(closes));
        } finally {
            await edge.stop();
            await up.stop();
        }
    });

    it('ott-edge drains (SIGTERM): the page sees 1001 Going Away', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({
            config: { upstream: up.url, tls: { cert_file: certs.certFile, key_file: certs.keyFile }, shutdown: { delay: '0s', grace: '1s' } },
        });
        try {
            await openPage(page, edge);
            edge.kill('SIGTERM');
            assert.deepEqual(await edge.waitExit(10000), { code: 0, signal: null });
            const closes = await waitFor(async () => {
                const c = await closesOf(page);
                return c.length ? c : null;
            }, 10000, 'the page WebSocket to close');
            assert.equal(closes[0].code, 1001, JSON.stringify(closes));
            assert.equal(closes[0].wasClean, true, 'the closing handshake completed before TCP closed');
        } finally {
            await edge.stop();
            await up.stop();
        }
    });
});
