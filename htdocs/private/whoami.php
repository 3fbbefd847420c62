<?php // Who is signed in: the web server asked kinde.fcgi and put the user in $_SERVER (README, "PHP").
$user = $_SERVER + ['KINDE_EMAIL' => '', 'KINDE_USER_ID' => '', 'KINDE_PERMISSIONS' => ''];
echo '<!doctype html><title>Who am I</title><p>Signed in as <b>', htmlspecialchars($user['KINDE_EMAIL'] ?: $user['KINDE_USER_ID']), '</b>, with the permissions: ', htmlspecialchars($user['KINDE_PERMISSIONS'] ?: 'none'), '</p>';
