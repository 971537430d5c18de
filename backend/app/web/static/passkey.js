// "Sign in with a passkey" on the hosted login page: ask the service for request options,
// let the browser find a discoverable passkey, post its answer with the page's form (CSRF
// token and authorization request included). Shown only where the browser has WebAuthn.
"use strict";
(() => {
  const button = document.getElementById("passkey-button");
  const form = document.getElementById("passkey-form");
  if (!button || !form || !window.PublicKeyCredential?.parseRequestOptionsFromJSON) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await fetch(button.dataset.options, {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: "{}",
        credentials: "omit",
      });
      if (!answer.ok) throw new Error(`passkey options: ${answer.status}`);  // 429: try later
      const started = await answer.json();
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(started.options);
      const credential = await navigator.credentials.get({publicKey});
      form.elements.flow_id.value = started.flow_id;
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      form.submit();
    } catch (error) {
      button.disabled = false;  // cancelled, or no passkey here: the password form stays
    }
  });
})();
