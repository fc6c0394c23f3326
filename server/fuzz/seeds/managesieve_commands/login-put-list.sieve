AUTHENTICATE "PLAIN" "AGFsaWNlAGZ1enotcGFzc3dvcmQ="
PUTSCRIPT "main" {106+}
require ["fileinto", "vacation"];
if header :contains "Subject" "x" { fileinto "X"; }
vacation "away";

SETACTIVE "main"
LISTSCRIPTS
GETSCRIPT "main"
HAVESPACE "main" 100
LOGOUT
