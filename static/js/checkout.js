// Tranche hosted checkout: small helpers only; every page works without them.
(function () {
  "use strict";
  var BRANDS = [
    // [pattern on the digits typed, brand, label]; CB cards show the scheme they carry.
    [/^4/, "visa", "Visa"],
    [/^(5[1-5]|2(2[2-9][1-9]|2[3-9]|[3-6]|7[01]|720))/, "mastercard", "Mastercard"],
    [/^(5[06-9]|6[0-9])/, "maestro", "Maestro"],
    [/^3[47]/, "amex", "American Express"]
  ];
  var number = document.getElementById("id_card_number");
  var pictogram = document.getElementById("card-brand");
  if (number && pictogram) {
    number.addEventListener("input", function () {
      var digits = number.value.replace(/\D/g, "").slice(0, 19);
      number.value = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
      var found = BRANDS.filter(function (b) { return b[0].test(digits); })[0];
      pictogram.dataset.brand = found ? found[1] : "";
      pictogram.textContent = found ? found[2] : "";
      var bad = digits.length >= 13 && !luhn(digits);
      number.setCustomValidity(bad ? number.dataset.invalidMessage || "Invalid card number" : "");
    });
  }
  var expiry = document.getElementById("id_card_expiry");
  if (expiry) {
    expiry.addEventListener("input", function () {
      var digits = expiry.value.replace(/\D/g, "").slice(0, 4);
      expiry.value = digits.length > 2 ? digits.slice(0, 2) + "/" + digits.slice(2) : digits;
    });
  }
  var cvc = document.getElementById("id_card_cvc");
  if (cvc) {
    cvc.addEventListener("input", function () { cvc.value = cvc.value.replace(/\D/g, "").slice(0, 4); });
  }
  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = +digits[digits.length - 1 - i];
      if (i % 2) { d *= 2; if (d > 9) { d -= 9; } }
      sum += d;
    }
    return sum % 10 === 0;
  }
  var back = document.querySelector("[data-redirect]");
  var counter = document.querySelector(".countdown");
  if (back && counter) {
    var left = +back.dataset.redirect;
    var timer = setInterval(function () {
      left -= 1;
      counter.textContent = Math.max(left, 0);
      if (left <= 0) { clearInterval(timer); window.location.assign(back.href); }
    }, 1000);
  }
  // One click per form: a double click must not post twice.
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) { setTimeout(function () { button.disabled = true; }, 0); }
    });
  });
})();
