// What CloudFront Functions runtime 2.0 provides and a bare V8 (mini-racer) lacks: the parts of
// `require('crypto')` (createHash('sha256').update(string).digest('hex')) and of `Buffer`
// (Buffer.from(base64, 'base64').toString('utf8')) that edge/viewer_request.js uses.
// For the local edge and the tests ONLY (edge/local.py prepends it); never shipped to CloudFront,
// whose own modules answer there. Plain JavaScript so that the function's code path is the one
// CloudFront runs; tests/edge/test_emulated_runtime.py checks it against hashlib and base64.
var __troyRuntime = (function () {
  function utf8(text) {
    var out = [];
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        var low = text.charCodeAt(i + 1);
        if (low >= 0xdc00 && low <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
          i++;
        }
      }
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
  }

  function fromUtf8(bytes) {
    var text = '';
    for (var i = 0; i < bytes.length; ) {
      var b = bytes[i];
      var c, n;
      if (b < 0x80) { c = b; n = 1; }
      else if (b >= 0xc2 && b < 0xe0) { c = b & 31; n = 2; }
      else if (b >= 0xe0 && b < 0xf0) { c = b & 15; n = 3; }
      else if (b >= 0xf0 && b < 0xf5) { c = b & 7; n = 4; }
      else { text += '\ufffd'; i++; continue; }
      var ok = i + n <= bytes.length;
      for (var j = 1; ok && j < n; j++) {
        if ((bytes[i + j] & 0xc0) !== 0x80) ok = false;
        else c = (c << 6) | (bytes[i + j] & 63);
      }
      if (!ok) { text += '\ufffd'; i++; continue; }
      text += String.fromCodePoint(c);
      i += n;
    }
    return text;
  }

  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ];

  function sha256Hex(bytes) {
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var data = bytes.slice();
    var bitLength = bytes.length * 8;
    data.push(0x80);
    while (data.length % 64 !== 56) data.push(0);
    var high = Math.floor(bitLength / 0x100000000);
    data.push((high >>> 24) & 255, (high >>> 16) & 255, (high >>> 8) & 255, high & 255);
    data.push((bitLength >>> 24) & 255, (bitLength >>> 16) & 255, (bitLength >>> 8) & 255, bitLength & 255);
    var w = new Array(64);
    for (var off = 0; off < data.length; off += 64) {
      for (var t = 0; t < 16; t++) {
        var p = off + t * 4;
        w[t] = ((data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3]) >>> 0;
      }
      for (t = 16; t < 64; t++) {
        var x = w[t - 15];
        var y = w[t - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) >>> 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var ch = (e & f) ^ (~e & g);
        var t1 = (k + S1 + ch + K[t] + w[t]) >>> 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var maj = (a & b) ^ (a & c) ^ (b & c);
        var t2 = (S0 + maj) >>> 0;
        k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0; h[3] = (h[3] + d) >>> 0;
      h[4] = (h[4] + e) >>> 0; h[5] = (h[5] + f) >>> 0; h[6] = (h[6] + g) >>> 0; h[7] = (h[7] + k) >>> 0;
    }
    var hex = '';
    for (var i = 0; i < 8; i++) hex += ('00000000' + h[i].toString(16)).slice(-8);
    return hex;
  }

  var crypto = {
    createHash: function (algorithm) {
      if (algorithm !== 'sha256') throw new Error('emulated crypto: only sha256');
      var bytes = [];
      var hash = {
        update: function (data) {
          if (typeof data !== 'string') throw new Error('emulated crypto: update() takes a string');
          bytes = bytes.concat(utf8(data));
          return hash;
        },
        digest: function (encoding) {
          if (encoding !== 'hex') throw new Error('emulated crypto: digest("hex") only');
          return sha256Hex(bytes);
        },
      };
      return hash;
    },
  };

  var ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

  // Node's (and so CloudFront's) base64 decoding is lenient: it stops at "=" and skips what is
  // not in the alphabet; the function only passes it text matching [A-Za-z0-9+/]+={0,2}.
  function fromBase64(text) {
    var bytes = [];
    var bits = 0;
    var value = 0;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      if (ch === '=') break;
      var v = ALPHABET.indexOf(ch);
      if (v < 0) continue;
      value = (value << 6) | v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((value >> bits) & 255);
      }
    }
    return bytes;
  }

  var Buffer = {
    from: function (text, encoding) {
      if (encoding !== 'base64') throw new Error('emulated Buffer: from(text, "base64") only');
      var bytes = fromBase64(text);
      return {
        toString: function (to) {
          if (to !== 'utf8') throw new Error('emulated Buffer: toString("utf8") only');
          return fromUtf8(bytes);
        },
      };
    },
  };

  return { crypto: crypto, Buffer: Buffer, sha256Hex: sha256Hex, utf8: utf8 };
})();
var Buffer = __troyRuntime.Buffer;
function require(name) {
  if (name === 'crypto') return __troyRuntime.crypto;
  throw new Error('emulated runtime: no module ' + name);
}
