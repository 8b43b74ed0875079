// Troy viewer-request router (CloudFront Functions, runtime cloudfront-js-2.0; keep < 10 KB).
// Looks the Host up in the KeyValueStore and puts the live build into the URI, so the build is
// part of the cache key and a deploy or rollback is one KVS write with no invalidation.
// The local edge (edge/local.py) runs this same file; see docs/edge.md.
import cf from 'cloudfront';

const crypto = require('crypto');
const kvs = cf.kvs();

// Pipeline and build ids as Troy writes them; "_" cannot start one, so "_immutable" never
// collides with a build id.
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
// Names that bundlers fingerprint. HTML, text and XML never are: a page must follow its build.
const ASSET_EXT = /^(js|mjs|cjs|css|wasm|woff2?|ttf|otf|eot|svg|png|jpe?g|gif|webp|avif|ico|json)$/;
const HEX_HASH = /[.-]([0-9a-f]{8,64})$/;
const B64_HASH = /-([A-Za-z0-9_-]{8})$/;

// The fingerprint rule (edge/manifest.py is_fingerprinted is the same rule; docs/edge.md):
// the last path segment is {base}{sep}{hash}.{ext}[.map] with a non-empty base, ext an asset
// extension, and hash either 8-64 lowercase hex chars with a digit and a letter (sep "." or "-"),
// or 8 base64url chars with a digit and an upper-case letter (sep "-", Vite/Rollup).
function isFingerprinted(uri) {
  let path;
  try {
    path = decodeURIComponent(uri);
  } catch (e) {
    return false;
  }
  const name = path.slice(path.lastIndexOf('/') + 1);
  let dot = name.lastIndexOf('.');
  if (dot <= 0) return false;
  let ext = name.slice(dot + 1).toLowerCase();
  let stem = name.slice(0, dot);
  if (ext === 'map') {
    dot = stem.lastIndexOf('.');
    if (dot <= 0) return false;
    ext = stem.slice(dot + 1).toLowerCase();
    stem = stem.slice(0, dot);
  }
  if (ext === 'map' || !ASSET_EXT.test(ext)) return false;
  let m = HEX_HASH.exec(stem);
  if (m && m.index > 0 && /[0-9]/.test(m[1]) && /[a-f]/.test(m[1])) return true;
  m = B64_HASH.exec(stem);
  return m !== null && m.index > 0 && /[0-9]/.test(m[1]) && /[A-Z]/.test(m[1]);
}

// A visitor credential (edge/rules.py credential_make): "{salt}:{sha256 hex}" of
// salt ":" username ":" password; with a leading "*" any username (hashed as "").
const CREDENTIAL = /^\*?[0-9a-f]{16,64}:[0-9a-f]{64}$/;

// A pointer is "{pipeline id}/{build id}", or for a protected host the JSON object
// {"p": pipeline, "b": build, "a": [credential, …]} (pipelines.models.pointer_value; short keys so
// that a function older than passwords answers 404 for it, never the site). The long form
// {"pipeline", "build", "auth"} is read too.
// "{pipeline id}/" (no build) means the host is known but nothing is live: that is what Troy
// writes, since the KeyValueStore API documents no empty value. "" means the same (the local
// edge's answer for a pipeline that has no pointer row yet).
function parsePointer(value) {
  if (value === '') return { empty: true };
  let pipeline, build;
  let auth = [];
  if (value.charAt(0) === '{') {
    try {
      const obj = JSON.parse(value);
      pipeline = obj.p !== undefined ? obj.p : obj.pipeline;
      build = obj.b !== undefined ? obj.b : obj.build;
      if (obj.a !== undefined) auth = obj.a;
      else if (obj.auth !== undefined) auth = obj.auth;
    } catch (e) {
      return null;
    }
    if (!Array.isArray(auth)) return null;
    for (let i = 0; i < auth.length; i++) {
      if (typeof auth[i] !== 'string' || !CREDENTIAL.test(auth[i])) return null;
    }
  } else {
    const slash = value.indexOf('/');
    if (slash < 0) return null;
    pipeline = value.slice(0, slash);
    build = value.slice(slash + 1);
  }
  if (typeof pipeline !== 'string' || typeof build !== 'string') return null;
  if (!ID.test(pipeline)) return null;
  if (build !== '' && !ID.test(build)) return null;
  return { pipeline: pipeline, build: build, empty: build === '', auth: auth };
}

// Does the request's `Authorization: Basic …` match one of the credentials? The decoded
// "user:password" is hashed as salt ":" user ":" password, so it is never split for a named user.
function authorized(headers, auth) {
  const header = headers.authorization ? headers.authorization.value : '';
  const m = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m) return false;
  let pair;
  try {
    pair = Buffer.from(m[1], 'base64').toString('utf8');
  } catch (e) {
    return false;
  }
  const colon = pair.indexOf(':');
  if (colon < 0) return false;
  for (let i = 0; i < auth.length; i++) {
    const any = auth[i].charAt(0) === '*';
    const credential = any ? auth[i].slice(1) : auth[i];
    const sep = credential.indexOf(':');
    const salt = credential.slice(0, sep);
    const input = salt + ':' + (any ? pair.slice(colon) : pair);
    if (crypto.createHash('sha256').update(input).digest('hex') === credential.slice(sep + 1)) return true;
  }
  return false;
}

function unauthorized(host) {
  return {
    statusCode: 401,
    statusDescription: 'Unauthorized',
    headers: {
      'www-authenticate': { value: 'Basic realm="' + host + '", charset="UTF-8"' },
      'content-type': { value: 'text/html; charset=utf-8' },
      'cache-control': { value: 'no-store' },
    },
    body: {
      encoding: 'text',
      data: '<!doctype html><meta charset="utf-8"><title>Password required</title><h1>Password required</h1><p>This site asks for a username and password.</p>',
    },
  };
}

// A browser navigating to a page (edge.rules.is_navigation is the same rule): the last segment
// has no dot, and Sec-Fetch-Mode is navigate, or without it Accept prefers HTML. Only such a
// request gets a build's SPA fallback, so it is marked in the URI (the cache key) to keep a
// cached fallback from answering a fetch() of the same URL.
function isNavigation(headers, uri) {
  if (uri.slice(uri.lastIndexOf('/') + 1).indexOf('.') >= 0) return false;
  const mode = headers['sec-fetch-mode'];
  if (mode && mode.value) return mode.value === 'navigate';
  const accept = headers.accept ? headers.accept.value : '';
  let html = -1;
  let other = -1;
  const parts = accept.split(',');
  for (let i = 0; i < parts.length; i++) {
    const params = parts[i].split(';');
    const media = params[0].trim();
    let q = 1;
    for (let j = 1; j < params.length; j++) {
      const eq = params[j].indexOf('=');
      const key = (eq < 0 ? params[j] : params[j].slice(0, eq)).trim();
      if (key === 'q') {
        q = Number(params[j].slice(eq + 1).trim());
        if (eq < 0 || isNaN(q) || params[j].slice(eq + 1).trim() === '') q = 0;
      }
    }
    if (media === 'text/html' || media === 'application/xhtml+xml') html = Math.max(html, q);
    else if (media !== '') other = Math.max(other, media === '*/*' ? q - 0.001 : q);
  }
  return html > 0 && html >= other;
}

function notFound(message) {
  return {
    statusCode: 404,
    statusDescription: 'Not Found',
    headers: {
      'content-type': { value: 'text/html; charset=utf-8' },
      'cache-control': { value: 'no-store' },
    },
    body: {
      encoding: 'text',
      data: '<!doctype html><meta charset="utf-8"><title>Not found</title><h1>Not found</h1><p>' + message + '</p>',
    },
  };
}

async function handler(event) {
  const request = event.request;
  // The build comes from the pointer only: a visitor must not choose it.
  delete request.headers['x-troy-build'];
  delete request.headers['x-troy-path'];
  const hostHeader = request.headers.host;
  const host = hostHeader ? hostHeader.value.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '') : '';
  if (host === '') return notFound('No site is served at this address.');
  let value;
  try {
    value = await kvs.get(host);
  } catch (e) {
    // kvs.get throws when the key is missing.
    return notFound('No site is served at this address.');
  }
  const pointer = parsePointer(value);
  if (pointer === null) return notFound('No site is served at this address.');
  // Before the cache: an answer of a protected host is never served to a visitor without the
  // password (its cached copy is keyed like any other).
  if (pointer.auth && pointer.auth.length > 0 && !authorized(request.headers, pointer.auth)) {
    return unauthorized(host);
  }
  if (pointer.empty) return notFound('This site has nothing deployed yet.');
  const uri = request.uri.charAt(0) === '/' ? request.uri : '/' + request.uri;
  if (isFingerprinted(uri)) {
    request.uri = '/' + pointer.pipeline + '/_immutable' + uri;
    request.headers['x-troy-build'] = { value: pointer.build };
  } else if (isNavigation(request.headers, uri)) {
    request.uri = '/' + pointer.pipeline + '/_nav/' + pointer.build + uri;
  } else {
    request.uri = '/' + pointer.pipeline + '/' + pointer.build + uri;
  }
  return request;
}
