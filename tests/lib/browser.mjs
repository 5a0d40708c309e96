// browser — Debian's Chromium (/usr/bin/chromium) driven headless by playwright-core for
// the end-to-end test, with a CA trusted the way a user would trust it: imported into the
// NSS database of a throw-away HOME ($HOME/.pki/nssdb, which Chromium on Linux reads), so
// certificates are really verified (no --ignore-certificate-errors of any kind).
//
// API:
//   browserAvailable() -> '' when chromium, certutil and playwright-core are all there,
//                         else the reason (for a test's `skip`)
//   launchBrowser({trustPem, hostMap, timeoutMs}) -> {context, page, home, profile, close()}
//     trustPem: PEM of a root CA to trust for TLS servers (optional)
//     hostMap:  names mapped to 127.0.0.1 with --host-resolver-rules (everything else
//               unresolvable except localhost, so nothing leaves loopback)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.OTT_EDGE_CHROMIUM || '/usr/bin/chromium';
const CERTUTIL = '/usr/bin/certutil';

const dirs = new Set();
process.on('exit', () => {
    for (const d of dirs) {
        try {
            rmSync(d, { recursive: true, force: true });
        } catch {}
    }
});

let pw = null;
async function playwright() {
    if (!pw) pw = await import('playwright-core');
    return pw;
}

export async function browserAvailable() {
    if (!existsSync(CHROMIUM)) return `${CHROMIUM} not installed (apt-get install chromium, or tools/deps.sh test)`;
    if (!existsSync(CERTUTIL)) return `${CERTUTIL} not installed (apt-get install libnss3-tools)`;
    try {
        await playwright();
    } catch {
        return 'playwright-core not installed (cd tests && npm ci)';
    }
    return '';
}

/** Creates $home/.pki/nssdb and imports pem as a trusted TLS root. */
function trustInNss(home, pem) {
    const db = path.join(home, '.pki', 'nssdb');
    mkdirSync(db, { recursive: true });
    const opts = { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15000 };
    execFileSync(CERTUTIL, ['-d', `sql:${db}`, '-N', '--empty-password'], opts);
    const file = path.join(home, 'root.pem');
    writeFileSync(file, pem);
    execFileSync(CERTUTIL, ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'ott-edge test root', '-i', file], opts);
    return execFileSync(CERTUTIL, ['-d', `sql:${db}`, '-L'], opts).toString();
}

export async function launchBrowser({ trustPem, hostMap = [], timeoutMs = 30000 } = {}) {
    const { chromium } = await playwright();
    const home = mkdtempSync(path.join(os.tmpdir(), 'ott-edge-chromium-'));
    dirs.add(home);
    const profile = path.join(home, 'profile');
    mkdirSync(profile);
    if (trustPem) trustInNss(home, trustPem);
    const rules = [...hostMap.map((h) => `MAP ${h} 127.0.0.1`), 'EXCLUDE localhost'].join(', ');
    // launchPersistentContext passes --user-data-dir=profile (fresh) and --headless itself.
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        timeout: timeoutMs,
        viewport: { width: 900, height: 560 },
        env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') },
        args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-proxy-server',
            `--host-resolver-rules=${rules}`,
        ],
    });
    context.setDefaultTimeout(timeoutMs);
    const page = context.pages()[0] || (await context.newPage());
    let closed = false;
    return {
        context,
        page,
        home,
        profile,
        async close() {
            if (closed) return;
            closed = true;
            // context.close() ends the browser process; bound it in case Chromium hangs
            let t;
            await Promise.race([context.close().catch(() => {}), new Promise((r) => (t = setTimeout(r, 10000)))]);
            clearTimeout(t);
        },
    };
}
