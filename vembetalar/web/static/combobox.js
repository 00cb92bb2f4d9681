// Long lists (hemkommun, bosättningsland) as a search by name: an ARIA combobox over the
// server's own <select>, which stays the form field. "Karl" offers Karlstad (1780); the
// municipalities offered are the chosen region's. Without JavaScript the select is used as is.
(function () {
  "use strict";
  var count = 0;

  function options(select) {
    var from = select.getAttribute("data-region-from");
    var region = from ? (document.querySelector('#case-form [name="' + from + '"]') || {}).value : "";
    return Array.prototype.filter.call(select.options, function (o) {
      return o.value && (!region || o.getAttribute("data-region") === region);
    });
  }

  function build(select) {
    count += 1;
    var id = "cb-" + count;
    var wrap = document.createElement("div");
    wrap.className = "combobox";
    var input = document.createElement("input");
    input.type = "text";
    input.id = id;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id + "-list");
    input.setAttribute("autocomplete", "off");
    input.setAttribute("placeholder", select.getAttribute("data-combobox") || "");
    var described = select.getAttribute("aria-describedby");
    if (described) input.setAttribute("aria-describedby", described);
    var list = document.createElement("ul");
    list.id = id + "-list";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    var label = document.querySelector('label[for="' + select.id + '"]');
    if (label) { label.setAttribute("for", id); list.setAttribute("aria-label", label.textContent.trim()); }
    select.parentNode.insertBefore(wrap, select);
    wrap.appendChild(input);
    wrap.appendChild(list);
    wrap.appendChild(select);
    select.hidden = true;
    select.tabIndex = -1;
    var active = -1;

    function shown() { return Array.prototype.slice.call(list.children); }
    function close() { list.hidden = true; input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); active = -1; }
    function choose(option) {
      select.value = option.value;
      input.value = option.textContent;
      close();
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
    function mark(index) {
      var items = shown();
      if (!items.length) return;
      active = (index + items.length) % items.length;
      items.forEach(function (li, i) { li.setAttribute("aria-selected", i === active ? "true" : "false"); });
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({ block: "nearest" });
    }
    function open() {
      var typed = input.value.trim().toLowerCase();
      list.innerHTML = "";
      options(select).filter(function (o) {
        return !typed || o.textContent.toLowerCase().indexOf(typed) !== -1;
      }).slice(0, 50).forEach(function (o, i) {
        var li = document.createElement("li");
        li.id = id + "-o" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.setAttribute("data-value", o.value);
        li.textContent = o.textContent;
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(o); });
        list.appendChild(li);
      });
      list.hidden = !list.children.length;
      input.setAttribute("aria-expanded", list.hidden ? "false" : "true");
      active = -1;
    }
    var current = select.options[select.selectedIndex];
    if (current && current.value) input.value = current.textContent;
    input.addEventListener("input", function (e) {
      e.stopPropagation();  // the form's live decision waits for a choice, not for each letter
      if (!input.value.trim() && select.value) { select.value = ""; select.dispatchEvent(new Event("change", { bubbles: true })); }
      open();
    });
    input.addEventListener("focus", open);
    input.addEventListener("blur", function () { setTimeout(close, 150); });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { if (list.hidden) open(); mark(active + 1); e.preventDefault(); }
      else if (e.key === "ArrowUp") { mark(active - 1); e.preventDefault(); }
      else if (e.key === "Enter" && !list.hidden && active >= 0) {
        var value = shown()[active].getAttribute("data-value");
        choose(Array.prototype.find.call(select.options, function (o) { return o.value === value; }));
        e.preventDefault();
      } else if (e.key === "Escape") { close(); }
    });
    input.addEventListener("change", function (e) { e.stopPropagation(); });
    var from = select.getAttribute("data-region-from");
    if (from) {
      document.addEventListener("change", function (e) {
        if (!e.target || e.target.name !== from) return;
        var chosen = select.options[select.selectedIndex];
        if (chosen && chosen.value && chosen.getAttribute("data-region") !== e.target.value) {
          select.value = ""; input.value = "";
        }
      });
    }
  }

  function init() { document.querySelectorAll("select[data-combobox]:not([disabled])").forEach(build); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
