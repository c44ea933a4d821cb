(function () {
  var grid = document.getElementById('grid');
  if (grid) {
    var cards = grid.getElementsByClassName('card');
    var wrongOnly = document.getElementById('wrong-only');
    var source = document.getElementById('source');
    var shown = document.getElementById('shown');
    var update = function () {
      var n = 0;
      for (var i = 0; i < cards.length; i++) {
        var c = cards[i];
        var hide = (wrongOnly.checked && !c.classList.contains('wrong')) ||
          (source.value && c.getAttribute('data-source') !== source.value);
        c.classList.toggle('hidden', hide);
        if (!hide) n++;
      }
      shown.textContent = n + ' of ' + cards.length + ' shown';
    };
    wrongOnly.addEventListener('change', update);
    source.addEventListener('change', update);
    update();
  }
  // The state and duration of each stage are facts of the latest run, not content of this
  // artifact: `hhi run` writes them into the store's runs/reports/<this report's digest>.js,
  // three folders up from objects/ab/cdef…/index.html.
  var body = document.getElementById('pipeline-body');
  var done = function (html) {
    body.innerHTML = html;
    document.documentElement.setAttribute('data-ready', '1');
  };
  var m = location.pathname.match(/\/objects\/([0-9a-f]{2})\/([0-9a-f]{62})\/index\.html$/);
  if (!m) {
    done('<p class="absent">This page was opened outside its store, so the run\'s facts are not beside it: <code>hhi graph P.toml</code> and <code>hhi show STAGE</code> print them.</p>');
    return;
  }
  var s = document.createElement('script');
  s.setAttribute('data-optional', '1');
  s.src = '../../../runs/reports/' + m[1] + m[2] + '.js';
  s.onload = function () {
    done(window.hhiPipeline ? window.hhiPipeline.html : '<p class="absent">The run facts file is malformed.</p>');
  };
  s.onerror = function () {
    done('<p class="absent">No run has recorded its facts for this report in this store yet: <code>hhi run</code> writes them.</p>');
  };
  document.head.appendChild(s);
})();
