/* Talk to your Audio: citations and transcript sentences play the recording from their moment,
 * and the transcript follows the playing time.
 *
 * Loaded in the page's <head> before Gradio renders (and Gradio re-renders components at will),
 * so every listener is on `document` and every element is looked up when needed.
 *
 * Contract with the page:
 *   #player audio, #player video   the player (the first one; there may be none)
 *   a[href^="#t="]                 a link to a moment (seconds), anywhere on the page
 *   .seg[data-t]                   a sentence of the transcript, starting at data-t seconds
 *   #transcript-doc p.para         a paragraph, data-start..data-end seconds; the playing one
 *                                  gets the class "playing"
 *   button.spk[data-spk]           a speaker's name: a click picks that speaker in
 *                                  #speaker-pick (its radio input of that value) and puts the
 *                                  cursor in #speaker-name, to rename them
 *   window.talkSeek(seconds)       play from there (false when there is no player)
 */
(function () {
  "use strict";
  if (window.talkSeek) return; // loaded twice: the first one serves

  var FOLLOW_PAUSE_MS = 4000; // the transcript stops following while the visitor scrolls it

  function player() {
    return document.querySelector("#player audio, #player video");
  }

  function offScreen(el) {
    var r = el.getBoundingClientRect();
    if (!r.width && !r.height) return false; // not displayed: nothing to scroll to
    var h = window.innerHeight || document.documentElement.clientHeight;
    return r.top < 0 || r.bottom > h;
  }

  function seek(seconds) {
    var t = Number(seconds);
    var media = player();
    if (!media || !isFinite(t) || t < 0) return false;
    try {
      media.currentTime = t;
    } catch (e) {
      return false;
    }
    var playing = media.play();
    if (playing && typeof playing.catch === "function") playing.catch(function () {}); // autoplay policy
    if (offScreen(media)) media.scrollIntoView({ behavior: "smooth", block: "nearest" });
    follow(t, true);
    return true;
  }

  function elementOf(node) {
    return node && node.nodeType === 1 ? node : node && node.parentElement;
  }

  function pickSpeaker(label) {
    var radios = document.querySelectorAll('#speaker-pick input[type="radio"]');
    for (var i = 0; i < radios.length; i++) {
      if (radios[i].value === label) {
        if (!radios[i].checked) radios[i].click();
        var box = document.querySelector("#speaker-name input, #speaker-name textarea");
        if (box) {
          box.scrollIntoView({ behavior: "smooth", block: "nearest" });
          setTimeout(function () { box.focus(); box.select(); }, 150); // after the name is filled in
        }
        return;
      }
    }
  }

  // Capture phase: before Gradio's own handlers, which open links in a new tab.
  document.addEventListener("click", function (ev) {
    if (ev.button !== 0) return;
    var el = elementOf(ev.target);
    if (!el || !el.closest) return;
    var link = el.closest('a[href^="#t="]');
    if (link) {
      ev.preventDefault();
      ev.stopPropagation();
      ev.stopImmediatePropagation();
      seek(parseFloat(link.getAttribute("href").slice(3)));
      return;
    }
    var spk = el.closest("button.spk[data-spk]");
    if (spk) {
      pickSpeaker(spk.getAttribute("data-spk"));
      return;
    }
    var seg = el.closest(".seg[data-t]");
    if (seg) {
      var selection = window.getSelection ? String(window.getSelection()) : "";
      if (selection !== "") return; // the visitor is selecting text
      seek(parseFloat(seg.getAttribute("data-t")));
    }
  }, true);

  // The paragraphs, rebuilt when the transcript is replaced or changes.
  var doc = null, paras = [], starts = [], observer = null, stale = true, current = null;

  function paragraphs() {
    var now = document.getElementById("transcript-doc");
    if (now !== doc || stale) {
      if (observer) observer.disconnect();
      doc = now;
      current = null;
      paras = doc ? Array.prototype.slice.call(doc.querySelectorAll("p.para[data-start]")) : [];
      starts = paras.map(function (p) { return parseFloat(p.getAttribute("data-start")); });
      stale = false;
      if (doc && window.MutationObserver) {
        observer = observer || new MutationObserver(function () { stale = true; });
        observer.observe(doc, { childList: true, subtree: true, attributes: true,
                                attributeFilter: ["data-start", "data-end"] });
      }
    }
    return paras;
  }

  // The last paragraph that starts at or before t (the one whose data-start <= t < data-end,
  // or the one before a pause), -1 before the first.
  function find(t) {
    var lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  var lastVisitorScroll = 0, ownScrollUntil = 0;

  function scroller(el) {
    for (var p = el.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement) {
      var y = getComputedStyle(p).overflowY;
      if ((y === "auto" || y === "scroll") && p.scrollHeight > p.clientHeight) return p;
    }
    return null;
  }

  // Scroll the paragraph's own container (never the window) to show it, unless the visitor
  // scrolled the transcript a moment ago.
  function reveal(para, force) {
    var box = scroller(para);
    if (!box || !box.clientHeight) return;
    if (!force && Date.now() - lastVisitorScroll < FOLLOW_PAUSE_MS) return;
    var b = box.getBoundingClientRect(), r = para.getBoundingClientRect(), delta = 0;
    if (r.top < b.top) delta = r.top - b.top - 8;
    else if (r.bottom > b.bottom) delta = Math.min(r.bottom - b.bottom + 8, r.top - b.top - 8);
    if (!delta) return;
    ownScrollUntil = Date.now() + 1000; // the scroll events that follow are ours
    // Smooth to the next paragraph, a jump across the transcript.
    box.scrollTo({ top: box.scrollTop + delta, behavior: Math.abs(delta) > box.clientHeight ? "auto" : "smooth" });
  }

  function follow(t, force) {
    var list = paragraphs();
    var i = find(t);
    var next = i >= 0 ? list[i] : null;
    if (next !== current) {
      if (doc) {
        var marked = doc.querySelectorAll("p.para.playing");
        for (var k = 0; k < marked.length; k++) if (marked[k] !== next) marked[k].classList.remove("playing");
      }
      if (next) next.classList.add("playing");
      current = next;
    }
    if (next) reveal(next, force);
  }

  function onTime(ev) {
    var el = elementOf(ev.target);
    if (!el || !el.closest || !el.closest("#player")) return;
    if (el !== player()) return;
    follow(el.currentTime, false);
  }

  // Media events do not bubble: listen while they go down.
  document.addEventListener("timeupdate", onTime, true);
  document.addEventListener("seeked", onTime, true);

  // The visitor scrolling the transcript (not the page, not our own smooth scrolls).
  document.addEventListener("scroll", function (ev) {
    var el = ev.target;
    if (!el || el.nodeType !== 1 || Date.now() < ownScrollUntil) return;
    var d = document.getElementById("transcript-doc");
    if (d && el.contains(d)) lastVisitorScroll = Date.now();
  }, true);
  ["wheel", "touchmove"].forEach(function (type) {
    document.addEventListener(type, function (ev) {
      var el = elementOf(ev.target);
      if (el && el.closest && el.closest("#transcript-panel, #transcript-doc")) {
        lastVisitorScroll = Date.now();
        ownScrollUntil = 0;
      }
    }, { capture: true, passive: true });
  });

  window.talkSeek = seek;
})();
