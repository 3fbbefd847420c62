<?php
// The protected PHP script of the nginx, Apache and lighttpd tests: prints $_SERVER (what the web
// server handed PHP) and $_GET as JSON.
header('Content-Type: application/json');
header('Cache-Control: no-store');
echo json_encode(['server' => $_SERVER, 'get' => $_GET]);
