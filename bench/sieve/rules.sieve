# bench/sieve/rules.sieve - the 20-rule Sieve script of bench/sieve.sh, installed as the active
# script of every bench user on mailsite (the sieve-rs interpreter) and on Dovecot (Pigeonhole).
#
# Rules 1-19 are the kind a user of the site writes: headers, addresses, the envelope, the size
# and the body, relational and numeric comparisons, variables. None of them files the messages of
# Postfix's smtp-source (From: <loadgen@sender.test>, To:, Date:, Message-Id: <...@clientN.sender.test>,
# Subject: Site load test, a body of "NXXXX..." lines); rules 8 and 12 match them and only set
# variables. Rule 20 matches every one of them: it flags it \Flagged and files it into "Filtered",
# so a message anywhere else means the two interpreters disagreed.
require ["fileinto", "imap4flags", "body", "relational", "variables", "envelope", "mailbox", "comparator-i;ascii-numeric"];

# The variables rules 8 and 12 set, declared here at the top: RFC 5229 makes every variable
# global to the script (Pigeonhole does), but sieve-rs 0.7 scopes a variable first set inside an
# if block to that block, so "${subject}" would be empty again after rule 8's block. The string
# tests have one key each: sieve-rs 0.7 decides a string test with a key list by its last key.
# Rules 6, 10 and 14 compare with i;ascii-numeric: the two agree on values that are digits only
# (Pigeonhole reads "5 (Lowest)" as 5 as RFC 4790 says, sieve-rs as no number).
set "subject" "";
set "sender_domain" "";

# 1. invoices by subject
if header :contains "Subject" ["invoice", "Rechnung", "facture"] {
    fileinto :create "Invoices";
    stop;
}

# 2. mailing lists by the sender's domain
if address :domain :is "From" ["lists.example", "lists.example.org"] {
    fileinto :create "Lists";
    stop;
}

# 3. mailing lists by their headers
if anyof (exists "List-Id", exists "List-Post") {
    fileinto :create "Lists";
    stop;
}

# 4. large messages
if size :over 1M {
    fileinto :create "Large";
    stop;
}

# 5. newsletters: the body offers to unsubscribe
if body :contains "unsubscribe" {
    fileinto :create "Newsletters";
    stop;
}

# 6. low priority (X-Priority 4 or 5)
if header :value "gt" :comparator "i;ascii-numeric" "X-Priority" "3" {
    fileinto :create "Low priority";
    stop;
}

# 7. bounces
if envelope :localpart :is "from" ["mailer-daemon", "postmaster"] {
    fileinto :create "Bounces";
    stop;
}

# 8. remember the subject (matches every message that has one)
if header :matches "Subject" "*" {
    set "subject" "${1}";
}

# 9. spam tagged in the subject by an upstream filter
if string :contains "${subject}" "[SPAM]" {
    addflag "$Junk";
    fileinto :create "Junk";
    stop;
}

# 10. spam score from an upstream filter
if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" "5" {
    addflag "$Junk";
    fileinto :create "Junk";
    stop;
}

# 11. role addresses
if address :all :is ["To", "Cc"] ["postmaster@bench.test", "abuse@bench.test", "hostmaster@bench.test"] {
    fileinto :create "Admin";
    stop;
}

# 12. remember the envelope sender's domain (matches every message from someone@somewhere)
if envelope :matches "from" "*@*" {
    set :lower "sender_domain" "${2}";
}

# 13. calendars, by the envelope sender's domain
if anyof (string :is "${sender_domain}" "calendar.example",
          string :is "${sender_domain}" "events.example") {
    fileinto :create "Calendar";
    stop;
}

# 14. mail looping between servers
if header :count "gt" :comparator "i;ascii-numeric" "Received" "25" {
    fileinto :create "Loops";
    stop;
}

# 15. executables sent as attachments
if body :raw :contains ["application/x-msdownload", "filename=\"invoice.exe\""] {
    fileinto :create "Quarantine";
    stop;
}

# 16. automatic replies
if header :is "Auto-Submitted" ["auto-replied", "auto-generated"] {
    fileinto :create "Automatic";
    stop;
}

# 17. bulk mail
if header :is "Precedence" ["bulk", "list", "junk"] {
    fileinto :create "Bulk";
    stop;
}

# 18. notifications nobody can answer
if address :localpart :matches "From" ["noreply*", "no-reply*", "donotreply*"] {
    fileinto :create "Notifications";
    stop;
}

# 19. empty messages without a subject
if allof (size :under 200, not exists "Subject") {
    fileinto :create "Empty";
    stop;
}

# 20. the load generator's messages: every message smtp-source sends
if allof (address :domain :is "From" "sender.test",
          envelope :domain :is "from" "sender.test",
          string :is "${sender_domain}" "sender.test") {
    addflag "\\Flagged";
    fileinto :create "Filtered";
    stop;
}
