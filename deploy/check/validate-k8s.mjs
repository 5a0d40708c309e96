#!/usr/bin/env node
// validate-k8s — checks Kubernetes manifests offline against the Kubernetes API types.
//
//   node deploy/check/validate-k8s.mjs [FILE_OR_DIR ...]      (default: deploy/kubernetes)
//
// The schema is the package kubernetes-types (TypeScript declarations generated from the
// Kubernetes OpenAPI spec, v1.30); the checker is the TypeScript compiler. Each YAML
// document becomes a typed object literal, `const d: Deployment = {...}`, so the compiler
// rejects what the API server would: an unknown (misspelt) field anywhere in the tree, a
// wrong type (string for a number, object for a list), a missing required field, a wrong
// apiVersion/kind pair. No cluster and no network are needed.
// A kustomization.yaml is checked too: each listed resource exists, each manifest is listed.
// Exit 0 when every document passes, 1 with one line per problem otherwise.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments, LineCounter } from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const typesDir = path.join(here, 'node_modules', 'kubernetes-types');
if (!fs.existsSync(typesDir)) {
    console.error(`validate-k8s: ${typesDir} missing: run \`npm ci\` in ${here}`);
    process.exit(2);
}

const args = process.argv.slice(2);
const inputs = args.length ? args : [path.join(here, '..', 'kubernetes')];
const files = [];
for (const p of inputs) {
    if (fs.statSync(p).isDirectory()) {
        for (const f of fs.readdirSync(p).sort()) if (/\.ya?ml$/.test(f)) files.push(path.join(p, f));
    } else files.push(p);
}

const problems = [];
const docs = []; // {file, line, label, obj, module, type}

// "apps/v1" -> kubernetes-types/apps/v1 ; "v1" -> core/v1 ; "networking.k8s.io/v1" -> networking/v1
function moduleFor(apiVersion) {
    if (typeof apiVersion !== 'string' || !apiVersion) return null;
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
    const dir = group.split('.')[0];
    const rel = `${dir}/${version}`;
    return fs.existsSync(path.join(typesDir, `${rel}.d.ts`)) ? rel : null;
}

for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const lc = new LineCounter();
    const parsed = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true });
    for (const d of Array.isArray(parsed) ? parsed : [parsed]) {
        const line = d.range ? lc.linePos(d.range[0]).line : 1;
        for (const e of d.errors) problems.push(`${file}:${line}: YAML: ${e.message.split('\n')[0]}`);
        if (d.errors.length) continue;
        const obj = d.toJS();
        if (obj === null || obj === undefined) continue;
        const label = `${obj.kind ?? '?'}/${obj.metadata?.name ?? '?'}`;
        if (typeof obj !== 'object' || Array.isArray(obj)) {
            problems.push(`${file}:${line}: not a mapping`);
            continue;
        }
        if (typeof obj.apiVersion === 'string' && obj.apiVersion.startsWith('kustomize.config.k8s.io/')) {
            checkKustomization(file, obj);
            continue;
        }
        if (!obj.apiVersion || !obj.kind) {
            problems.push(`${file}:${line}: ${label}: apiVersion and kind are required`);
            continue;
        }
        const mod = moduleFor(obj.apiVersion);
        if (!mod) {
            problems.push(`${file}:${line}: ${label}: unknown apiVersion "${obj.apiVersion}"`);
            continue;
        }
        if (!obj.metadata?.name) problems.push(`${file}:${line}: ${label}: metadata.name is required`);
        docs.push({ file, line, label, obj, module: mod, type: obj.kind });
    }
}

function checkKustomization(file, k) {
    const dir = path.dirname(file);
    const listed = new Set(k.resources || []);
    for (const r of listed) if (!fs.existsSync(path.join(dir, r))) problems.push(`${file}: resource ${r} does not exist`);
    for (const f of fs.readdirSync(dir))
        if (/\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/.test(f) && !listed.has(f))
            problems.push(`${file}: ${f} is not listed in resources`);
}

// ---- generate one TypeScript file; remember which JSON path each line holds
const lines = [];
const linePath = [];
function emit(s, p) {
    lines.push(s);
    linePath.push(p);
}
const ident = (k) => JSON.stringify(k);
function literal(v, p, indent, prefix, suffix) {
    const pad = '  '.repeat(indent);
    if (Array.isArray(v)) {
        emit(`${pad}${prefix}[`, p);
        v.forEach((x, i) => literal(x, `${p}[${i}]`, indent + 1, '', ','));
        emit(`${pad}]${suffix}`, p);
    } else if (v && typeof v === 'object') {
        emit(`${pad}${prefix}{`, p);
        for (const [k, x] of Object.entries(v)) literal(x, p ? `${p}.${k}` : k, indent + 1, `${ident(k)}: `, ',');
        emit(`${pad}}${suffix}`, p);
    } else {
        emit(`${pad}${prefix}${v === undefined ? 'null' : JSON.stringify(v)}${suffix}`, p);
    }
}
const docAtLine = [];
docs.forEach((d, i) => {
    emit(`import type { ${d.type} as T${i} } from "kubernetes-types/${d.module}";`, '');
    docAtLine[lines.length - 1] = i;
});
docs.forEach((d, i) => {
    const start = lines.length;
    literal(d.obj, '', 0, `export const d${i}: T${i} = `, ';');
    for (let l = start; l < lines.length; l++) docAtLine[l] = i;
});

const virtual = path.join(here, '__manifests__.ts');
const source = lines.join('\n') + '\n';
const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2020.d.ts'],
    target: ts.ScriptTarget.ES2020,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    baseUrl: here,
    paths: { 'kubernetes-types/*': [path.join(typesDir, '*')] },
};
const host = ts.createCompilerHost(options);
const getSourceFile = host.getSourceFile.bind(host);
host.getSourceFile = (name, lang, ...rest) =>
    path.resolve(name) === virtual ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
const fileExists = host.fileExists.bind(host);
host.fileExists = (name) => path.resolve(name) === virtual || fileExists(name);
const readFile = host.readFile.bind(host);
host.readFile = (name) => (path.resolve(name) === virtual ? source : readFile(name));

if (docs.length) {
    const program = ts.createProgram([virtual], options, host);
    const diags = [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics(), ...program.getGlobalDiagnostics()];
    for (const dg of diags) {
        const msg = ts.flattenDiagnosticMessageText(dg.messageText, ' ').replace(/\s+/g, ' ');
        if (!dg.file) {
            problems.push(`typescript: ${msg}`);
            continue;
        }
        const { line } = dg.file.getLineAndCharacterOfPosition(dg.start ?? 0);
        const d = docs[docAtLine[line]];
        const where = linePath[line] || '(document)';
        if (d) problems.push(`${path.relative(process.cwd(), d.file)}:${d.line}: ${d.label}: ${where}: ${msg}`);
        else problems.push(`${virtual}:${line + 1}: ${msg}`);
    }
}

if (problems.length) {
    for (const p of problems) console.error(p);
    console.error(`validate-k8s: ${problems.length} problem(s) in ${files.length} file(s)`);
    process.exit(1);
}
console.log(`validate-k8s: ${docs.length} document(s) in ${files.length} file(s) match the Kubernetes API types (kubernetes-types ${JSON.parse(fs.readFileSync(path.join(typesDir, 'package.json'), 'utf8')).version})`);
