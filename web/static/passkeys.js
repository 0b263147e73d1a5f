// Passkeys in the browser: sign in with one on /login, add one on /me/passkeys. Progressive enhancement: the
// buttons stay hidden unless this browser can do WebAuthn, and every page works without this file.
// It never stores anything; the server checks every answer. No inline script (strict CSP), no build step.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function fromB64url(s) {
    var b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function post(url, csrf, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body || {}),
    }).then(function (res) {
      return res
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          if (!res.ok) throw new Error(data.error || 'The request failed (' + res.status + ').');
          return data;
        });
    });
  }
  function showError(box, err) {
    if (!box) return;
    // A cancelled or timed-out prompt is not worth alarming anyone about.
    box.textContent =
      err && err.name === 'NotAllowedError'
        ? 'The passkey prompt was closed or timed out. Try again.'
        : (err && err.message) || 'Something went wrong.';
    box.hidden = false;
  }

  // Sign-in with a passkey on /login.
  var login = document.querySelector('[data-passkey-login]');
  if (login) {
    var form = document.querySelector('form[action="/login"]');
    var button = login.querySelector('[data-passkey-signin]');
    var errBox = login.querySelector('[data-passkey-error]');
    login.hidden = false;
    button.addEventListener('click', function () {
      var csrf = form.querySelector('input[name="_csrf"]').value;
      var next = form.querySelector('input[name="next"]').value;
      errBox.hidden = true;
      button.disabled = true;
      post('/login/passkey/options', csrf)
        .then(function (o) {
          return navigator.credentials.get({
            publicKey: {
              challenge: fromB64url(o.challenge),
              rpId: o.rpId,
              timeout: o.timeout,
              userVerification: o.userVerification,
              allowCredentials: (o.allowCredentials || []).map(function (c) {
                return { type: 'public-key', id: fromB64url(c.id), transports: c.transports };
              }),
            },
          });
        })
        .then(function (cred) {
          var r = cred.response;
          return post('/login/passkey', csrf, {
            next: next,
            response: {
              id: cred.id,
              rawId: toB64url(cred.rawId),
              type: cred.type,
              clientExtensionResults: cred.getClientExtensionResults(),
              authenticatorAttachment: cred.authenticatorAttachment || undefined,
              response: {
                clientDataJSON: toB64url(r.clientDataJSON),
                authenticatorData: toB64url(r.authenticatorData),
                signature: toB64url(r.signature),
                userHandle: r.userHandle ? toB64url(r.userHandle) : undefined,
              },
            },
          });
        })
        .then(function (done) {
          window.location.assign(done.redirect);
        })
        .catch(function (err) {
          button.disabled = false;
          showError(errBox, err);
        });
    });
  }

  // Adding a passkey on /me/passkeys.
  var register = document.querySelector('[data-passkey-register]');
  if (register) {
    var add = register.querySelector('[data-passkey-add]');
    var nameInput = register.querySelector('input[name="name"]');
    var regErr = register.querySelector('[data-passkey-error]');
    var unsupported = document.querySelector('[data-passkey-unsupported]');
    if (unsupported) unsupported.hidden = true;
    register.hidden = false;
    add.addEventListener('click', function () {
      var csrf = add.getAttribute('data-csrf');
      regErr.hidden = true;
      add.disabled = true;
      post('/api/me/passkeys/options', csrf)
        .then(function (o) {
          return navigator.credentials.create({
            publicKey: {
              challenge: fromB64url(o.challenge),
              rp: o.rp,
              user: { id: fromB64url(o.user.id), name: o.user.name, displayName: o.user.displayName },
              pubKeyCredParams: o.pubKeyCredParams,
              timeout: o.timeout,
              attestation: o.attestation,
              authenticatorSelection: o.authenticatorSelection,
              excludeCredentials: (o.excludeCredentials || []).map(function (c) {
                return { type: 'public-key', id: fromB64url(c.id), transports: c.transports };
              }),
              extensions: o.extensions,
            },
          });
        })
        .then(function (cred) {
          var r = cred.response;
          return post('/api/me/passkeys', csrf, {
            name: nameInput.value,
            response: {
              id: cred.id,
              rawId: toB64url(cred.rawId),
              type: cred.type,
              clientExtensionResults: cred.getClientExtensionResults(),
              authenticatorAttachment: cred.authenticatorAttachment || undefined,
              response: {
                clientDataJSON: toB64url(r.clientDataJSON),
                attestationObject: toB64url(r.attestationObject),
                transports: typeof r.getTransports === 'function' ? r.getTransports() : [],
              },
            },
          });
        })
        .then(function () {
          window.location.assign('/me/passkeys?added=1');
        })
        .catch(function (err) {
          add.disabled = false;
          showError(regErr, err);
        });
    });
  }
})();
