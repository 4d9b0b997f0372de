// The login form: on success, go to the clinician's groups (or the CSO's audit view).
import { login } from "./api.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  try {
    const user = await login(form.username.value, form.password.value);
    // a clinical safety officer's home is the safety page
    window.location.assign(user.role === "cso" ? "/cso/" : "/clinician/");
  } catch (err) {
    error.textContent = err.message;
  }
});
