const ws = new WebSocket('ws://localhost:8001/ws/assistant/session-123?user_id=user-456');

ws.onopen = () => {
  console.log('Connected!');
  
  // Send message
  ws.send(JSON.stringify({
    user_id: 'user-456',
    message: 'Help me with 9-Pillar audit',
    mode: 'strategist',
    context: {current_track: 'innovation-foundations'}
  }));
};

ws.onmessage = (event) => {
  const data = JSON.parse(event.data);
  
  switch(data.type) {
    case 'connected':
      console.log('Welcome:', data.message);
      break;
    case 'stream_start':
      console.log('AI is thinking...');
      break;
    case 'stream_chunk':
      console.log('Chunk:', data.content);
      break;
    case 'response':
      console.log('Response:', data.response);
      console.log('Suggestions:', data.suggestions);
      break;
    case 'error':
      console.error('Error:', data.message);
      break;
  }
};
