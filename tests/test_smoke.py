def test_user_gets_mailbox(make_user):
    user = make_user()
    assert user.mailbox.email == user.email
