function whenImagesLoaded() {
  return Promise.all(Array.from(document.images).map((im) => (im.complete ? Promise.resolve()
    : new Promise((res) => { im.addEventListener("load", res, {once: true});
      im.addEventListener("error", res, {once: true}); }))));
}
// once every image has loaded or failed: run `then`, count the decoded images, set data-ready="1"
function markReady(then) {
  return whenImagesLoaded().then(() => {
    if (then) then();
    document.body.dataset.loadedImages = String(Array.from(document.images).filter((im) => im.naturalWidth > 0)
      .length);
    document.body.dataset.ready = "1";
  });
}
// data-ready="error" with the message, shown in the element with id `box` if there is one
function markFailed(err, box, what) {
  document.body.dataset.ready = "error";
  document.body.dataset.error = String(err);
  const el = box ? document.getElementById(box) : null;
  if (el) {
    const p = document.createElement("p");
    p.className = "err";
    p.textContent = what + " failed: " + err;
    el.replaceChildren(p);
  }
}
