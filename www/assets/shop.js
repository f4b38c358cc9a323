// The demo shop: what a site owner writes. Every interaction is a Segment
// Spec e-commerce event, sent through the Sluice script tag.
(function () {
  var PRODUCTS = [
    { id: "mug-blue", sku: "MUG-001", name: "Blue Mug", price: 12, category: "Mugs", brand: "Sluice" },
    { id: "mug-espresso", sku: "MUG-002", name: "Espresso Cup", price: 9, category: "Cups", brand: "Sluice" },
    { id: "mug-travel", sku: "MUG-003", name: "Travel Mug", price: 24, category: "Mugs", brand: "Sluice" },
    { id: "mug-json", sku: "MUG-004", name: "{ \"json\": \"mug\" }", price: 15, category: "Mugs", brand: "Sluice" },
    { id: "mug-pipeline", sku: "MUG-005", name: "Pipeline Pint", price: 18, category: "Glasses", brand: "Sluice" },
    { id: "mug-edge", sku: "MUG-006", name: "Edge Espresso Set", price: 32, category: "Cups", brand: "Sluice" },
  ];
  var CURRENCY = "EUR";
  var $ = function (id) { return document.getElementById(id); };
  var el = function (tag, text, cls) {
    var e = document.createElement(tag);
    if (text != null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  var find = function (id) { return PRODUCTS.filter(function (p) { return p.id === id; })[0]; };
  var cart = function () { try { return JSON.parse(localStorage.getItem("shop_cart") || "[]"); } catch (e) { return []; } };
  var save = function (c) { localStorage.setItem("shop_cart", JSON.stringify(c)); count(); };
  var cartId = function () {
    var id = localStorage.getItem("shop_cart_id");
    if (!id) { id = "cart-" + Math.random().toString(36).slice(2, 10); localStorage.setItem("shop_cart_id", id); }
    return id;
  };
  var props = function (p, quantity, position) {
    var o = { product_id: p.id, sku: p.sku, name: p.name, price: p.price, category: p.category, brand: p.brand,
      quantity: quantity || 1, currency: CURRENCY, url: location.origin + "/product.html?id=" + p.id };
    if (position) o.position = position;
    return o;
  };
  var lines = function () {
    return cart().map(function (l) { var p = find(l.id); return p ? props(p, l.quantity) : null; }).filter(Boolean);
  };
  var total = function (ls) { return ls.reduce(function (s, l) { return s + l.price * l.quantity; }, 0); };
  function count() {
    var n = cart().reduce(function (s, l) { return s + l.quantity; }, 0);
    if ($("cart-count")) $("cart-count").textContent = n;
  }
  function user() { try { return JSON.parse(localStorage.getItem("shop_user") || "null"); } catch (e) { return null; } }

  function renderList(query) {
    var list = $("products");
    list.textContent = "";
    PRODUCTS.filter(function (p) { return !query || p.name.toLowerCase().indexOf(query.toLowerCase()) >= 0 || p.category.toLowerCase().indexOf(query.toLowerCase()) >= 0; })
      .forEach(function (p) {
        var li = el("li", null, "card");
        var a = el("a", p.name);
        a.href = "/product.html?id=" + encodeURIComponent(p.id);
        li.appendChild(a);
        li.appendChild(el("p", p.category + " · €" + p.price, "price"));
        list.appendChild(li);
      });
  }

  var pages = {
    home: function () {
      sluice.page("Shop", "Home");
      renderList("");
      $("search").addEventListener("submit", function (e) {
        e.preventDefault();
        var q = $("q").value;
        sluice.track("Products Searched", { query: q });
        renderList(q);
      });
      $("demo-button").addEventListener("click", function () {
        sluice.track("Demo Clicked", { button: "demo", value: 42 });
      });
    },
    product: function () {
      var p = find(new URLSearchParams(location.search).get("id")) || PRODUCTS[0];
      sluice.page("Shop", "Product", { product_id: p.id });
      sluice.track("Product Viewed", props(p));
      var box = $("product");
      box.appendChild(el("h1", p.name));
      box.appendChild(el("p", p.category + " · €" + p.price, "price"));
      var add = el("button", "Add to cart");
      add.type = "button";
      add.id = "add-to-cart";
      add.addEventListener("click", function () {
        var c = cart();
        var line = c.filter(function (l) { return l.id === p.id; })[0];
        if (line) line.quantity += 1; else c.push({ id: p.id, quantity: 1 });
        save(c);
        var added = props(p, 1);
        added.cart_id = cartId();
        sluice.track("Product Added", added);
        add.textContent = "Added ✓";
      });
      box.appendChild(add);
    },
    cart: function () {
      sluice.page("Shop", "Cart");
      var ls = lines();
      sluice.track("Cart Viewed", { cart_id: cartId(), products: ls });
      ls.forEach(function (l) { $("cart-items").appendChild(el("li", l.quantity + " × " + l.name + " — €" + l.price)); });
      $("cart-total").textContent = ls.length ? "Total: €" + total(ls) : "Your cart is empty.";
    },
    checkout: function () {
      sluice.page("Shop", "Checkout");
      var ls = lines();
      var orderId = "ord_" + Date.now();
      sluice.track("Checkout Started", { order_id: orderId, value: total(ls), revenue: total(ls), currency: CURRENCY, products: ls });
      ls.forEach(function (l) { $("checkout-items").appendChild(el("li", l.quantity + " × " + l.name)); });
      $("checkout-total").textContent = "Total: €" + total(ls);
      $("place-order").addEventListener("click", function () {
        sluice.track("Order Completed", { checkout_id: cartId(), order_id: orderId, total: total(ls), revenue: total(ls),
          shipping: 0, tax: 0, currency: CURRENCY, products: ls });
        save([]);
        localStorage.removeItem("shop_cart_id");
        $("order-id").textContent = orderId;
        $("thanks").hidden = false;
        $("place-order").disabled = true;
      });
    },
    signin: function () {
      sluice.page("Shop", "Sign in");
      var show = function (u) {
        $("who").textContent = u.email;
        $("signed-in").hidden = !u;
      };
      if (user()) show(user());
      $("signin-form").addEventListener("submit", function (e) {
        e.preventDefault();
        var email = $("email").value.trim().toLowerCase();
        var u = { id: "user-" + email.split("@")[0], email: email, name: $("name").value.trim() };
        localStorage.setItem("shop_user", JSON.stringify(u));
        sluice.identify(u.id, { email: u.email, name: u.name });
        sluice.track("Signed In", { method: "email" });
        show(u);
      });
      $("signout").addEventListener("click", function () {
        sluice.track("Signed Out");
        sluice.reset();
        localStorage.removeItem("shop_user");
        $("signed-in").hidden = true;
      });
    },
  };
  count();
  var init = pages[document.body.dataset.page];
  if (init) init();
})();
