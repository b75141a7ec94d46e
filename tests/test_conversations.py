"""Conversations kept with their knowledge base, and exported as Markdown that reads on its own."""


def test_a_conversation_exports_as_markdown_with_its_questions_answers_and_sources(make_kb):
    kb = make_kb()
    convs = kb.conversations
    c = convs.create("CLIP 是怎么训练的？")
    convs.add(c.id, "user", "CLIP 是怎么训练的？")
    convs.add(c.id, "assistant", "CLIP 用四亿对图文做对比学习[1]。",
              [{"number": 1, "name": "clip.txt", "page": 3, "text": "CLIP 用从网络收集的\n四亿对图片和文字训练。"}])
    convs.add(c.id, "user", "法网冠军是谁？")
    convs.add(c.id, "assistant", "你的文档中没有找到与这个问题相关的内容。",
              [{"number": 1, "name": "tennis.txt", "page": 1, "text": "法国网球公开赛……"}], related=True)
    md = convs.markdown(c.id)
    assert md.startswith("# CLIP 是怎么训练的？\n")
    assert "## CLIP 是怎么训练的？\n\nCLIP 用四亿对图文做对比学习[1]。\n\nSources:\n\n" \
           "- [1] clip.txt, section 3: CLIP 用从网络收集的 四亿对图片和文字训练。" in md
    assert "Possibly related:\n\n- [1] tennis.txt, section 1" in md
