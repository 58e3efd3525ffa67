// The overview's "Add a phone camera": a single-use pairing link and its QR code (POST /api/v1/phone/pairings).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let countdown = null, qrUrl = null;

  async function addPhone() {
    $("phone-error").textContent = "";
    let pairing;
    try {
      pairing = await Maskwatch.api("/api/v1/phone/pairings", { method: "POST" });
    } catch (e) {
      $("phone-error").textContent = e.message;
      return;
    }
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = URL.createObjectURL(new Blob([pairing.qr_svg], { type: "image/svg+xml" }));
    $("phone-qr").src = qrUrl;
    $("phone-link").href = $("phone-link").textContent = pairing.url;
    $("phone-pairing").hidden = false;
    clearInterval(countdown);
    const tick = () => {
      const left = Math.round(pairing.expires_at - Date.now() / 1000);
      if (left <= 0) {
        clearInterval(countdown);
        $("phone-pairing").hidden = true;
        $("phone-error").textContent = "the pairing link expired: make a new one";
        return;
      }
      $("phone-expiry").textContent = `valid for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}, once`;
    };
    tick();
    countdown = setInterval(tick, 1000);
  }

  $("phone-add").addEventListener("click", addPhone);
})();
