// "Add a passkey" on /account/passkeys: ask the service for creation options (a form post
// with this page's CSRF token), let the browser create a passkey, post its answer with the
// page's form. Shown only where the browser has WebAuthn's JSON helpers; a login that is no
// longer recent is sent to the login page, which comes back here.
"use strict";
(() => {
  const form = document.getElementById("passkey-register-form");
  const button = document.getElementById("passkey-register");
  const problem = document.getElementById("passkey-problem");
  const unsupported = document.getElementById("passkey-unsupported");
  if (!form || !button || !window.PublicKeyCredential?.parseCreationOptionsFromJSON) return;
  unsupported.hidden = true;
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    problem.hidden = true;
    try {
      const answer = await fetch(button.dataset.options, {
        method: "POST",
        body: new URLSearchParams({csrf_token: form.elements.csrf_token.value}),
        headers: {Accept: "application/json"},
        credentials: "same-origin",
      });
      const started = await answer.json();
      if (answer.status === 403 && typeof started.login === "string") {
        window.location.assign(started.login);  // sign in again, then back here
        return;
      }
      if (!answer.ok) throw new Error(`passkey options: ${answer.status}`);
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(started);
      const credential = await navigator.credentials.create({publicKey});
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      form.submit();
    } catch (error) {
      button.disabled = false;  // cancelled, or refused: the page says so, try again
      problem.hidden = false;
    }
  });
})();
